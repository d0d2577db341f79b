// Package access is keyraft's access control over the replicated state:
// tokens (create, look up, renew, revoke, spend a use, tidy), ACL
// policies per namespace, namespaces, grants (one operation on one key
// for a while, approved by a second identity), certificate roles for TLS
// client login, and break-glass configuration and sessions.
//
// A Service keeps nothing but the records of its Store (package store):
// every node's Service answers the same, and a change is one conditional
// commit through Raft. The node (cluster.Node.Access) owns the Service; the
// ceremonies that need the seal (generate-root, the break-glass shares)
// stay in package cluster and call NewToken, NewTokenEntry, TokenRecord
// and IssueBreakGlass. The HTTP API (package transport) decides requests
// with the entries and policies read here.
//
// Records (fsm/records.go): auth/token/<sha256(token)>, auth/accessor/,
// auth/children/, auth/cert/role/, sys/policy/ and sys/ns/<ns>/policy/,
// sys/namespace/, sys/grant/, sys/grant-active/, sys/break-glass/config
// and sys/break-glass/active. Errors are the sentinels below and the
// store's (ErrInvalidRequest, ErrPermissionDenied, ErrSealed), matched
// with errors.Is.
package access
