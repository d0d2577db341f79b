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
// ClusterLink is the cluster port: mutual TLS 1.3 with certificates of
// the cluster CA (ClusterCA) on both sides, connections routed by ALPN to
// Raft or write forwarding.
//
// This package holds no business rules: those live in transit, cluster
// and audit.
package transport
