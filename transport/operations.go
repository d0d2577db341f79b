package transport

import "strings"

// operations is the closed set of audit operation names: those of the
// table's rows ("transit/encrypt", "sys/unseal"). The audit event's
// operation and the metrics' operation label come from it, and every
// other path is "other", so that a caller (one without a token included)
// can neither grow the metrics' label set nor put text of its own into
// the operation of an event.
var operations = apiTable.operations()

// otherOperation names every path outside operations.
const otherOperation = "other"

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// operationOf is the operation of a URL path ("/v1/…") for an event made
// before the path is routed: its first two segments when they are a
// row's operation, else "other". A routed request takes its row's.
func operationOf(urlPath string) string {
	p := strings.TrimPrefix(urlPath, "/v1/")
	first, rest, _ := strings.Cut(p, "/")
	second, _, _ := strings.Cut(rest, "/")
	if op := first + "/" + second; operations[op] {
		return op
	}
	return otherOperation
}
