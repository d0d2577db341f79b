package transport

import (
	"net/http"
	"strings"
)

// apiTable is the whole API: every path keyraft serves is one of its rows.
var apiTable = newTable(apiRoutes())

func apiRoutes() []route {
	var rows []route
	rows = append(rows, transitRoutes()...)
	rows = append(rows, authRoutes()...)
	rows = append(rows, sysRoutes()...)
	rows = append(rows, auditRoutes()...)
	return rows
}

// tokenOps are the auth/token/* operations and what each does; all take
// POST (lookup-self GET too), and the revocations answer 204.
var tokenOps = []struct{ op, summary string }{
	{"create", "Create a child token (policies a subset of the caller's unless sudo)."},
	{"create-orphan", "Create a token without a parent."},
	{"lookup", "Look a token up."},
	{"lookup-self", "Look the caller's own token up."},
	{"lookup-accessor", "Look a token up by its accessor."},
	{"renew", "Renew a token."},
	{"renew-self", "Renew the caller's own token."},
	{"renew-accessor", "Renew a token by its accessor."},
	{"revoke", "Revoke a token and its children."},
	{"revoke-self", "Revoke the caller's own token."},
	{"revoke-accessor", "Revoke a token by its accessor."},
	{"revoke-orphan", "Revoke a token, making its children orphans."},
}

func authRoutes() []route {
	var rows []route
	for _, t := range tokenOps {
		op := t.op
		r := route{pattern: "auth/token/" + op, methods: mPost, auth: tokenAuth, namespaced: true,
			handler: (*API).tokenOp, summary: t.summary}
		switch op {
		case "revoke-orphan":
			r.auth = sudoAuth // Vault's root-protected path
		case "lookup-self":
			r.methods = []string{http.MethodGet, http.MethodPost}
		}
		if strings.HasPrefix(op, "revoke") {
			r.committed = http.StatusNoContent
		}
		if op != "create" && op != "create-orphan" {
			r.sensitive = []string{"token"}
		}
		rows = append(rows, r)
	}
	return append(rows,
		route{pattern: "auth/cert/login", methods: mPost, auth: public, unsealed: true, handler: (*API).certLogin, summary: "Log in with the TLS client certificate."},
		route{pattern: "auth/cert/certs", methods: mList, auth: tokenAuth, handler: (*API).listCertRoles, summary: "List the certificate roles."},
		route{pattern: "auth/cert/certs/:name", methods: mGet, auth: tokenAuth, handler: (*API).readCertRole, summary: "Read a certificate role."},
		route{pattern: "auth/cert/certs/:name", methods: mPost, auth: tokenAuth, committed: http.StatusNoContent, handler: (*API).writeCertRole, summary: "Write a certificate role."},
		route{pattern: "auth/cert/certs/:name", methods: mDel, auth: tokenAuth, committed: http.StatusNoContent, handler: (*API).deleteCertRole, summary: "Delete a certificate role."},
	)
}

func sysRoutes() []route {
	anyNS := func(r route) route { r.namespaced = true; return r }
	rows := []route{
		// Status and the seal: the same in every namespace.
		anyNS(route{pattern: "sys/seal-status", methods: mGet, handler: (*API).sealStatusReply, summary: "Whether the node is sealed, and its seal."}),
		anyNS(route{pattern: "sys/health", methods: mGet, handler: (*API).sysHealth, summary: "Health, in Vault's status codes."}),
		anyNS(route{pattern: "sys/leader", methods: mGet, handler: (*API).sysLeader, summary: "The leader's address."}),
		{pattern: "sys/init", methods: mGet, handler: (*API).initStatus, summary: "Whether the cluster is initialized."},
		{pattern: "sys/init", methods: mPost, handler: (*API).sysInit, summary: "Initialize the cluster."},
		{pattern: "sys/unseal", methods: mPost, handler: (*API).sysUnseal, summary: "Give one unseal share."},
		{pattern: "sys/seal", methods: mPost, auth: sudoAuth, handler: (*API).sealNode, summary: "Seal this node."},
		{pattern: "sys/rotate", methods: mPost, auth: sudoAuth, handler: (*API).rotateKeyring, summary: "Rotate the barrier keyring."},
		{pattern: "sys/rotate/progress", methods: mGet, auth: sudoAuth, handler: (*API).rotationProgress, summary: "Progress of re-encryption under the new keyring term."},
		{pattern: "sys/key-status", methods: mGet, auth: sudoAuth, handler: (*API).keyStatus, summary: "The barrier keyring's term."},
		{pattern: "sys/members", methods: mGet, auth: sudoAuth, handler: (*API).sysMembers, summary: "The members gossip sees."},
		// Ceremonies: the shares are the authority (sudo for rekey, as in Vault).
		{pattern: "sys/rekey/init", methods: []string{http.MethodPost, http.MethodDelete}, auth: sudoAuth, handler: (*API).rekeyInit, summary: "Start or cancel a rekey of the unseal shares."},
		{pattern: "sys/rekey/update", methods: mPost, auth: sudoAuth, handler: (*API).rekeyUpdate, summary: "Give one current share to the rekey."},
		{pattern: "sys/rekey-recovery-key/init", methods: []string{http.MethodPost, http.MethodDelete}, auth: sudoAuth, handler: (*API).rekeyInit, summary: "Start or cancel a rekey of the recovery shares."},
		{pattern: "sys/rekey-recovery-key/update", methods: mPost, auth: sudoAuth, handler: (*API).rekeyUpdate, summary: "Give one current recovery share."},
		{pattern: "sys/generate-root/attempt", methods: []string{http.MethodGet, http.MethodPost, http.MethodDelete}, handler: (*API).sysGenerateRoot, summary: "Start, show or cancel a root token generation."},
		{pattern: "sys/generate-root/update", methods: mPost, handler: (*API).sysGenerateRoot, summary: "Give one share to the root token generation."},
		{pattern: "sys/break-glass/config", methods: mGet, auth: sudoAuth, handler: (*API).readBreakGlassConfig, summary: "The break-glass policy and duration."},
		{pattern: "sys/break-glass/config", methods: mPost, auth: sudoAuth, committed: http.StatusNoContent, handler: (*API).writeBreakGlassConfig, summary: "Configure break-glass."},
		{pattern: "sys/break-glass/attempt", methods: []string{http.MethodGet, http.MethodPost, http.MethodDelete}, unsealed: true, handler: (*API).breakGlassAttempt, summary: "Start, show or cancel a break-glass attempt."},
		{pattern: "sys/break-glass/update", methods: mPost, unsealed: true, handler: (*API).breakGlassUpdate, summary: "Give one share to the break-glass attempt."},
		// Raft membership and snapshots.
		{pattern: "sys/storage/raft/configuration", methods: mGet, auth: sudoAuth, handler: (*API).raftConfiguration, summary: "The Raft servers."},
		{pattern: "sys/storage/raft/join", methods: mPost, handler: (*API).raftJoin, summary: "Make this (new) node join a cluster."},
		{pattern: "sys/storage/raft/bootstrap/challenge", methods: mPost, handler: (*API).joinChallenge, summary: "A joining node asks the leader for a challenge."},
		{pattern: "sys/storage/raft/bootstrap/answer", methods: mPost, handler: (*API).admitNode, summary: "A joining node answers the challenge and is admitted."},
		{pattern: "sys/storage/raft/remove-peer", methods: mPost, auth: sudoAuth, handler: (*API).removePeer, summary: "Remove a server from the cluster."},
		{pattern: "sys/storage/raft/snapshot", methods: mGet, auth: sudoAuth, handler: (*API).saveSnapshot, summary: "Stream a snapshot of the whole state (ciphertext only) as a Vault-compatible archive."},
		{pattern: "sys/storage/raft/snapshot", methods: mPost, auth: sudoAuth, rawBody: true, handler: (*API).restoreSnapshot, summary: "Restore a snapshot of this cluster (an archive sealed by its keyring, or an older raw snapshot)."},
		{pattern: "sys/storage/raft/snapshot-force", methods: mPost, auth: sudoAuth, rawBody: true, handler: (*API).restoreSnapshot, summary: "Restore a snapshot of any cluster."},
	}
	rows = append(rows, mountRoutes()...)
	return append(rows, accessRoutes()...)
}

// mountRoutes report keyraft's fixed mounts in Vault's shape (mounts.go)
// and the HA members, so that Vault's CLI and clients find them.
func mountRoutes() []route {
	return []route{
		{pattern: "sys/mounts", methods: mGet, auth: tokenAuth, handler: (*API).mountTable, summary: "The secrets engines: sys/ and transit/ (fixed)."},
		{pattern: "sys/mounts/*path", methods: mGet, auth: tokenAuth, handler: (*API).readMount, summary: "The secrets engine a path is under."},
		{pattern: "sys/mounts/*path", methods: mPost, auth: sudoAuth, handler: (*API).enableMount, summary: "Enable a secrets engine: refused, the mounts are fixed (Vault's 400 for a path in use)."},
		{pattern: "sys/mounts/*path", methods: mDel, auth: sudoAuth, handler: (*API).disableMount, summary: "Disable a secrets engine: refused for transit/; no mount is Vault's 204."},
		{pattern: "sys/mounts/:path/tune", methods: mGet, auth: tokenAuth, handler: (*API).mountTune, summary: "A mount's effective settings."},
		{pattern: "sys/mounts/:path/tune", methods: mPost, auth: sudoAuth, handler: (*API).tuneMount, summary: "Tune a mount: what changes nothing is accepted, anything else refused by name."},
		// The vault CLI's `auth tune` goes through sys/mounts/auth/.
		{pattern: "sys/mounts/auth/:path/tune", methods: mGet, auth: sudoAuth, handler: (*API).mountTune, summary: "An auth method's effective settings (the vault CLI's path)."},
		{pattern: "sys/mounts/auth/:path/tune", methods: mPost, auth: sudoAuth, handler: (*API).tuneMount, summary: "Tune an auth method (the vault CLI's path)."},
		{pattern: "sys/auth", methods: mGet, auth: tokenAuth, handler: (*API).mountTable, summary: "The auth methods: token/ and cert/ (fixed)."},
		{pattern: "sys/auth/:path", methods: mGet, auth: sudoAuth, handler: (*API).readMount, summary: "One auth method."},
		{pattern: "sys/auth/:path", methods: mPost, auth: sudoAuth, handler: (*API).enableMount, summary: "Enable an auth method: refused, the methods are fixed."},
		{pattern: "sys/auth/:path", methods: mDel, auth: sudoAuth, handler: (*API).disableMount, summary: "Disable an auth method: refused for token/ and cert/."},
		{pattern: "sys/auth/:path/tune", methods: mGet, auth: sudoAuth, handler: (*API).mountTune, summary: "An auth method's effective settings."},
		{pattern: "sys/auth/:path/tune", methods: mPost, auth: sudoAuth, handler: (*API).tuneMount, summary: "Tune an auth method: what changes nothing is accepted."},
		{pattern: "sys/ha-status", methods: mGet, auth: tokenAuth, handler: (*API).haStatus, summary: "The cluster's nodes and which is active (the leader)."},
	}
}

// accessRoutes are the rows of access control (policies, grants,
// namespaces), plugins and the node's operation.
func accessRoutes() []route {
	anyNS := func(r route) route { r.namespaced = true; return r }
	rows := []route{
		anyNS(route{pattern: "sys/policies/acl", methods: mList, auth: tokenAuth, handler: (*API).listPolicies, summary: "List the policies."}),
		anyNS(route{pattern: "sys/policies/acl/:name", methods: mGet, auth: tokenAuth, handler: (*API).readPolicy, summary: "Read a policy."}),
		anyNS(route{pattern: "sys/policies/acl/:name", methods: mPost, auth: tokenAuth, committed: http.StatusNoContent, handler: (*API).writePolicy, summary: "Write a policy."}),
		anyNS(route{pattern: "sys/policies/acl/:name", methods: mDel, auth: tokenAuth, committed: http.StatusNoContent, handler: (*API).deletePolicy, summary: "Delete a policy."}),
		anyNS(route{pattern: "sys/policy", methods: mGetList, auth: tokenAuth, handler: (*API).listPolicies, summary: "List the policies (the old path)."}),
		anyNS(route{pattern: "sys/policy/:name", methods: mGet, auth: tokenAuth, handler: (*API).readPolicy, summary: "Read a policy (the old path)."}),
		anyNS(route{pattern: "sys/policy/:name", methods: mPost, auth: tokenAuth, committed: http.StatusNoContent, handler: (*API).writePolicy, summary: "Write a policy (the old path)."}),
		anyNS(route{pattern: "sys/policy/:name", methods: mDel, auth: tokenAuth, committed: http.StatusNoContent, handler: (*API).deletePolicy, summary: "Delete a policy (the old path)."}),
		anyNS(route{pattern: "sys/capabilities-self", methods: mPost, auth: tokenAuth, handler: (*API).capabilitiesSelf, summary: "What the caller's policies allow on paths."}),
		anyNS(route{pattern: "sys/capabilities", methods: mPost, auth: tokenAuth, handler: (*API).capabilitiesToken, sensitive: []string{"token"}, summary: "What another token's policies allow on paths (by token)."}),
		anyNS(route{pattern: "sys/capabilities-accessor", methods: mPost, auth: tokenAuth, handler: (*API).capabilitiesToken, summary: "What another token's policies allow on paths (by accessor)."}),
		{pattern: "sys/grants", methods: mGetList, auth: tokenAuth, handler: (*API).listGrants, summary: "List the grants."},
		{pattern: "sys/grants", methods: mPost, auth: tokenAuth, handler: (*API).requestGrant, summary: "Ask for a grant: one operation on one key for a while."},
		{pattern: "sys/grants/approve", methods: mPost, auth: tokenAuth, handler: (*API).approveGrant, summary: "Approve a grant."},
		{pattern: "sys/grants/revoke", methods: mPost, auth: tokenAuth, committed: http.StatusNoContent, handler: (*API).revokeGrantBody, summary: "Revoke a grant."},
		{pattern: "sys/grants/:id", methods: mGet, auth: tokenAuth, handler: (*API).readGrant, summary: "Read a grant."},
		{pattern: "sys/grants/:id", methods: mDel, auth: tokenAuth, committed: http.StatusNoContent, handler: (*API).revokeGrantPath, summary: "Revoke a grant."},
		{pattern: "sys/namespaces", methods: mList, auth: tokenAuth, handler: (*API).listNamespaces, summary: "List the namespaces."},
		{pattern: "sys/namespaces/:name", methods: mGet, auth: tokenAuth, handler: (*API).readNamespace, summary: "Read a namespace."},
		{pattern: "sys/namespaces/:name", methods: mPost, auth: tokenAuth, handler: (*API).createNamespace, summary: "Create a namespace."},
		{pattern: "sys/namespaces/:name", methods: mDel, auth: tokenAuth, committed: http.StatusNoContent, handler: (*API).deleteNamespace, summary: "Delete an empty namespace and revoke its tokens."},
		{pattern: "sys/report/hygiene", methods: mGet, auth: tokenAuth, handler: (*API).hygieneReport, summary: "Every hygiene finding, most severe first."},
		// Plugins.
		{pattern: "sys/plugins/catalog", methods: mGetList, auth: sudoAuth, handler: (*API).pluginList, summary: "Every registered plugin."},
		{pattern: "sys/plugins/catalog/:type", methods: mList, auth: sudoAuth, handler: (*API).pluginNames, summary: "The plugins of one type."},
		{pattern: "sys/plugins/catalog/:type/:name", methods: mGet, auth: sudoAuth, handler: (*API).pluginRead, summary: "A plugin and its state on this node."},
		{pattern: "sys/plugins/catalog/:type/:name", methods: mPost, auth: sudoAuth, handler: (*API).pluginRegister, summary: "Register a plugin (pinned by SHA-256)."},
		{pattern: "sys/plugins/catalog/:type/:name", methods: mDel, auth: sudoAuth, handler: (*API).pluginDeregister, summary: "Deregister a plugin."},
		{pattern: "sys/plugins/reload/backend", methods: mPost, auth: sudoAuth, handler: (*API).pluginReload, summary: "Restart a plugin on every node."},
		// Operating the node.
		{pattern: "sys/metrics", methods: mGet, auth: sudoAuth, handler: (*API).serveMetrics, summary: "Prometheus metrics."},
		{pattern: "sys/pprof/:profile?", methods: mGet, auth: sudoAuth, handler: (*API).servePprof, summary: "Go profiles of the live node."},
	}
	return rows
}

func auditRoutes() []route {
	rows := []route{
		{pattern: "sys/audit", methods: mGet, handler: (*API).listAuditDevices, summary: "The audit devices and their delivery."},
		{pattern: "sys/audit/:name", methods: mGet, handler: (*API).readAuditDevice, summary: "One audit device."},
		{pattern: "sys/audit/:name", methods: mPost, handler: (*API).writeAuditDevice, summary: "Enable an audit device."},
		{pattern: "sys/audit/:name", methods: mDel, committed: http.StatusNoContent, handler: (*API).deleteAuditDevice, summary: "Disable an audit device."},
		{pattern: "sys/audit/events", methods: mGet, handler: (*API).auditQuery, summary: "Query the audit log."},
		{pattern: "sys/audit/history/*key", methods: mGet, handler: (*API).auditHistory, summary: "The state changes of one key."},
		{pattern: "sys/audit/public-key", methods: mGet, handler: (*API).auditPublicKey, summary: "The key that signs the audit checkpoints."},
		{pattern: "sys/audit/hash", methods: mPost, handler: (*API).auditHash, summary: "The audit HMAC of a value."},
		{pattern: "sys/audit/verify", methods: mGet, handler: (*API).auditVerify, summary: "Verify the whole audit chain on this node."},
		{pattern: "sys/audit/checkpoint", methods: mPost, handler: (*API).auditCheckpoint, summary: "Sign a checkpoint of the audit head now."},
		{pattern: "sys/audit/compact", methods: mPost, handler: (*API).auditCompact, summary: "Compact the audit log up to a sequence number."},
		{pattern: "sys/audit/stream", methods: mGet, handler: (*API).auditStream, summary: "Follow the audit log (JSON lines or server-sent events)."},
		{pattern: "sys/audit/export", methods: mGet, handler: (*API).auditExport, summary: "A verifiable export ending on a signed checkpoint."},
	}
	for i := range rows {
		rows[i].auth = sudoAuth
	}
	return rows
}
