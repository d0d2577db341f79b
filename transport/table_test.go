package transport

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

var updateAPIDoc = flag.Bool("update", false, "rewrite docs/api.md from the route table")

// examplePath fills a pattern's parameters with values a caller could send.
func examplePath(pattern string) string {
	var out []string
	for _, s := range compilePattern(pattern) {
		switch {
		case s.lit != "":
			out = append(out, s.lit)
		case s.optional:
			// left out: the row must match without it too (checked below)
		default:
			out = append(out, "x"+s.param)
		}
	}
	return strings.Join(out, "/")
}

// TestRouteTableRows walks the table: every row is reachable by its own
// method and path (no row shadows another), has a handler, a summary and
// an access level, and its operation is one the metrics may use.
func TestRouteTableRows(t *testing.T) {
	rows := apiTable.rows
	if len(rows) < 90 {
		t.Fatalf("%d rows: the table lost rows", len(rows))
	}
	for _, r := range rows {
		r := *r
		if r.handler == nil || r.summary == "" || len(r.methods) == 0 {
			t.Errorf("%v: needs a handler, a summary and methods", &r)
		}
		for _, m := range r.methods {
			for _, path := range []string{examplePath(r.pattern), strings.ReplaceAll(examplePath(r.pattern)+"/"+strings.Repeat("y/", strings.Count(r.pattern, "?")), "//", "/")} {
				path = strings.TrimSuffix(path, "/")
				got, params, miss := apiTable.lookup(path, m)
				if miss != nil {
					t.Errorf("%s %s (row %v): %d %s", m, path, &r, miss.status, miss.errorText())
					continue
				}
				if got.pattern != r.pattern || !slices.Contains(got.methods, m) {
					t.Errorf("%s %s: row %v answers, want %v", m, path, got, &r)
				}
				if r.key != "" && !strings.Contains(r.pattern, ":"+r.key+"?") && params[r.key] == "" {
					t.Errorf("%v: key parameter %q is not in the pattern", &r, r.key)
				}
			}
		}
		if !operations[r.operation] || r.operation == otherOperation {
			t.Errorf("%v: operation %q is not in the metrics' label set", &r, r.operation)
		}
		if op := operationOf("/v1/" + examplePath(r.pattern)); op != r.operation && strings.Count(r.operation, "/") == 1 {
			t.Errorf("%v: an unrouted event would say operation %q, the row says %q", &r, op, r.operation)
		}
		if r.lease != strings.HasPrefix(r.pattern, "transit/") {
			t.Errorf("%v: exactly the transit rows are leased key use", &r)
		}
		if r.createIfMissing && r.key == "" {
			t.Errorf("%v: an existence check needs the key parameter", &r)
		}
	}
}

// publicRows are the only rows a caller without a token may use, each
// for its reason. A new public row must be added here on purpose.
var publicRows = map[string]string{
	"sys/seal-status":                      "status",
	"sys/health":                           "status (load balancers)",
	"sys/leader":                           "status",
	"sys/init":                             "initializing a new cluster: nobody has a token yet",
	"sys/unseal":                           "the shares are the authority",
	"sys/generate-root/attempt":            "the shares are the authority (as in Vault)",
	"sys/generate-root/update":             "the shares are the authority",
	"sys/break-glass/attempt":              "the shares are the authority",
	"sys/break-glass/update":               "the shares are the authority",
	"sys/storage/raft/join":                "a new node has no token; it is not initialized",
	"sys/storage/raft/bootstrap/challenge": "the joining node's proof is its answer",
	"sys/storage/raft/bootstrap/answer":    "the answer (made with the unseal keys) is the proof",
	"auth/cert/login":                      "the client certificate is the credential",
}

// stateChangeWithoutSudo are the sys/ rows that change state with the
// capability of the method alone (no sudo), as in Vault.
var stateChangeWithoutSudo = map[string]string{
	"sys/policies/acl/:name":    "Vault checks policy writes by capability on the path",
	"sys/policy/:name":          "the old name of sys/policies/acl/:name",
	"sys/grants":                "any token may ask for a grant; an approver must approve it",
	"sys/grants/approve":        "approval is checked against the grant's approvers",
	"sys/grants/revoke":         "checked by capability on the path",
	"sys/grants/:id":            "checked by capability on the path",
	"sys/namespaces/:name":      "checked by capability on the path, in the root namespace only",
	"sys/capabilities-self":     "reads only (POST is Vault's method for it)",
	"sys/capabilities":          "reads only; as in Vault, a policy on the path decides who may ask about other tokens",
	"sys/capabilities-accessor": "reads only, as sys/capabilities",
}

func TestRouteTableAccess(t *testing.T) {
	for _, r := range apiTable.rows {
		r := *r
		_, isPublic := publicRows[r.pattern]
		if (r.auth == public) != isPublic {
			t.Errorf("%v: access %v; the public rows are exactly publicRows", &r, r.auth)
		}
		changes := slices.Contains(r.methods, http.MethodPost) || slices.Contains(r.methods, http.MethodDelete)
		if strings.HasPrefix(r.pattern, "sys/") && changes && r.auth == tokenAuth {
			if _, ok := stateChangeWithoutSudo[r.pattern]; !ok {
				t.Errorf("%v: a sys/ row that changes state must be sudo (or listed in stateChangeWithoutSudo with its reason)", &r)
			}
		}
		if r.namespaced && !(strings.HasPrefix(r.pattern, "transit/") || strings.HasPrefix(r.pattern, "auth/token/") ||
			strings.HasPrefix(r.pattern, "sys/polic") || strings.HasPrefix(r.pattern, "sys/capabilities") ||
			r.pattern == "sys/health" || r.pattern == "sys/seal-status" || r.pattern == "sys/leader") {
			t.Errorf("%v: only transit, tokens, policies and status exist inside a namespace", &r)
		}
	}
}

func TestRouteLookup(t *testing.T) {
	tbl := newTable([]route{
		{pattern: "a/:x", methods: mGet, summary: "param"},
		{pattern: "a/b", methods: mPost, summary: "literal"},
		{pattern: "a/:x/:y?/:z?", methods: mPost, summary: "optional"},
		{pattern: "r/*rest", methods: mGet, summary: "rest"},
	})
	for _, c := range []struct {
		method, path, want string
		status             int
		params             map[string]string
	}{
		{"POST", "a/b", "literal", 0, nil},
		{"GET", "a/b", "", 405, nil}, // the literal outranks the parameter
		{"GET", "a/q", "param", 0, map[string]string{"x": "q"}},
		{"POST", "a/q/1", "optional", 0, map[string]string{"x": "q", "y": "1"}},
		{"POST", "a/q/1/2", "optional", 0, map[string]string{"x": "q", "y": "1", "z": "2"}},
		{"POST", "a/q/1/2/3", "", 404, nil},
		{"GET", "a/", "", 404, nil}, // an empty parameter is no parameter
		{"GET", "r/k/with/slashes", "rest", 0, map[string]string{"rest": "k/with/slashes"}},
		{"GET", "r", "", 404, nil},
		{"GET", "nowhere", "", 404, nil},
	} {
		r, params, miss := tbl.lookup(c.path, c.method)
		switch {
		case c.status != 0 && (miss == nil || miss.status != c.status):
			t.Errorf("%s %s: %v %v, want %d", c.method, c.path, r, miss, c.status)
		case c.status == 0 && (miss != nil || r.summary != c.want || fmt.Sprint(params) != fmt.Sprint(c.params)):
			t.Errorf("%s %s: row %v params %v miss %v, want %s %v", c.method, c.path, r, params, miss, c.want, c.params)
		}
	}
}

// apiDoc renders docs/api.md from the table, so the reference cannot
// drift from what the node serves.
func apiDoc() string {
	var b strings.Builder
	b.WriteString("# keyraft HTTP API reference\n\n")
	b.WriteString("Generated from the route table (`transport/routes_*.go`) by\n")
	b.WriteString("`go test ./transport -run TestAPIDoc -update`; a test fails when it drifts.\n")
	b.WriteString("Every path is under `/v1/`. Access: `none` (no token), `token` (a token whose\n")
	b.WriteString("policies allow the method's capability on the path), `sudo` (also sudo on the\n")
	b.WriteString("path). `ns`: served inside a namespace (`X-Vault-Namespace`). PUT is POST;\n")
	b.WriteString("LIST is also `GET …?list=true`. `GET PATH?help=1` (`keyraft path-help PATH`,\n")
	b.WriteString("`vault path-help PATH`) answers a path's rows from the same table, for any valid token.\n")
	families := map[string][]route{}
	var order []string
	for _, r := range apiTable.rows {
		r := *r
		fam := defaultOperation(r.pattern)
		if _, ok := families[fam]; !ok {
			order = append(order, fam)
		}
		families[fam] = append(families[fam], r)
	}
	sort.Strings(order)
	for _, fam := range order {
		fmt.Fprintf(&b, "\n## %s\n\n| method | path | access | ns | what it does |\n|---|---|---|---|---|\n", fam)
		for _, r := range families[fam] {
			ns := ""
			if r.namespaced {
				ns = "yes"
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", strings.Join(r.methods, ", "), r.pattern, r.auth, ns, r.summary)
		}
	}
	return b.String()
}

func TestAPIDoc(t *testing.T) {
	const path = "../docs/api.md"
	want := apiDoc()
	if *updateAPIDoc {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/api.md is not the route table: run go test ./transport -run TestAPIDoc -update")
	}
}

// BenchmarkRouteLookup is the table's cost per request (a data op path).
func BenchmarkRouteLookup(b *testing.B) {
	for b.Loop() {
		if r, _, miss := apiTable.lookup("transit/encrypt/payments", "POST"); miss != nil || r == nil {
			b.Fatal("no row")
		}
	}
}
