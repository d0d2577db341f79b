// Package transport is the node's HTTP API: Vault's sys/*, auth/token/*
// and transit/ paths, plus keyraft's own (sys/audit/*, sys/grants,
// sys/break-glass/*, sys/report/*, the plugin catalog, Raft membership).
//
// # The route table
//
// Every path served is one row of apiTable (routes_transit.go,
// routes_sys.go): a pattern ("transit/sign/:name/:hash_algorithm?") and
// its methods, the handler, and what the pipeline does around it — who
// may call it (none, a token, a token with sudo), whether it exists
// inside a namespace, which parameter names a transit key, whether it is
// key use (lease check and batch budget), Vault's existence check, the
// status a committed change answers, sensitive fields, whether it reads
// its own body, its audit operation. Only rows know the shape of a path.
// docs/api.md is generated from the table (TestAPIDoc), and
// TestRouteTableRows/TestRouteTableAccess walk it: every row reachable
// by its own path, the public rows and the state changes without sudo
// listed with their reasons.
//
// # The pipeline
//
// ServeHTTP runs every request, streaming ones included, the same way:
//
//  1. find the row (404 for a path no row has, 405 for a method its row
//     does not serve) — before any token is looked at;
//  2. read the body within its limit (small without a valid token;
//     bounded per token in flight), decoded once on first use with exact
//     keys: what a policy condition checks is what the handler uses;
//  3. serve: refuse a row outside the request's namespace; authenticate
//     and authorize per the row's access (sealed → 503, no or bad token
//     → 403, policies and their conditions, grants, sudo, num_uses);
//     for key use, the lease check, the token's batch budget and the key
//     name mapped into the namespace; then the handler;
//  4. record the audit event with the real answer — a change commits its
//     event in the same Raft entry, saying the row's committed status; an
//     answer that differs afterwards gets a follow-up event — and only
//     then answer (a failed record answers 503 with no result; a panic in
//     a handler becomes a recorded 500). A streaming row's handler returns
//     the stream, which starts after its event is recorded.
//
// The cluster port (mutual TLS, ALPN channels) is package cluster/link;
// write forwarding between nodes is package cluster/forward (both are the
// cluster's own plumbing, so no import runs from cluster up to transport).
package transport
