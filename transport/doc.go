// Package transport is everything on the wire.
//
// API serves the HTTP API: Vault's sys/*, auth/token/lookup-self and the
// transit engine at /v1/transit/, plus keyraft's sys/audit/* and
// sys/storage/raft/*. Every request runs one pipeline: decode (size
// limit), authenticate (sealed → 503, token → 403), act, record the audit
// event, answer. Nothing is written to the client before the event is
// recorded; a failed record answers 503 with no result, and a panic in a
// handler becomes a recorded 500.
//
// The cluster port (mutual TLS, ALPN channels) is package cluster/link;
// write forwarding between nodes is package cluster/forward (both are the
// cluster's own plumbing, so no import runs from cluster up to transport).
package transport
