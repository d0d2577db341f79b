package transport

import "strings"

// operations is the closed set of audit operation names: the first two
// segments of a path keyraft serves ("transit/encrypt", "sys/unseal"). The
// audit event's operation and the metrics' operation label come from it,
// and every other path is "other", so that a caller (one without a token
// included) can neither grow the metrics' label set nor put text of its
// own into the operation of an event.
var operations = setOf(
	"transit/keys", "transit/encrypt", "transit/decrypt", "transit/rewrap", "transit/datakey",
	"transit/sign", "transit/verify", "transit/hmac", "transit/random", "transit/hash",
	"transit/backup", "transit/restore", "transit/export", "transit/wrapping_key",
	"auth/token", "auth/cert",
	"sys/init", "sys/unseal", "sys/seal", "sys/seal-status", "sys/health", "sys/leader",
	"sys/members", "sys/rotate", "sys/key-status", "sys/rekey", "sys/rekey-recovery-key",
	"sys/generate-root", "sys/audit", "sys/audit-hash", "sys/policies", "sys/policy",
	"sys/capabilities-self", "sys/plugins", "sys/grants", "sys/break-glass", "sys/namespaces",
	"sys/report", "sys/storage", "sys/metrics", "sys/mounts", "sys/pprof",
)

// otherOperation names every path outside operations.
const otherOperation = "other"

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// operationName is the audit operation of a path (split at "/"): one of
// operations, or "other".
func operationName(parts []string) string {
	if len(parts) >= 2 {
		if op := parts[0] + "/" + parts[1]; operations[op] {
			return op
		}
	}
	return otherOperation
}

// operationOf is operationName of a URL path ("/v1/…"), for an event made
// before the path is routed.
func operationOf(urlPath string) string {
	p := strings.TrimPrefix(urlPath, "/v1/")
	first, rest, _ := strings.Cut(p, "/")
	second, _, _ := strings.Cut(rest, "/")
	return operationName([]string{first, second})
}
