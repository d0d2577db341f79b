// Package link is the cluster port of a keyraft node: one TCP listener
// that speaks mutual TLS 1.3 only with nodes holding a certificate of the
// cluster's own CA, and hands each connection to the channel its ALPN
// protocol names — Raft (ProtoRaft, a raft.StreamLayer under hashicorp/raft's
// NetworkTransport) or write forwarding (ProtoForward).
//
// The CA (ClusterCA) is created when the cluster is initialized; its key is
// kept barrier-encrypted in the replicated state, so only an unsealed
// member can sign. A node's own credentials (Identity: certificate, key
// and CA certificate) live in its data directory so that a sealed node can
// still replicate the log. A node without credentials — neither
// initialized nor joined — refuses every connection and cannot dial.
//
// A joining node makes its key with NewNodeKey and sends only the
// certificate request; the leader signs it with SignCSR after the node has
// proved it holds the unseal material (see docs/design.md, "Joining").
package link
