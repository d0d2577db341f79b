package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/keyraft/keyraft/transit"
)

// hygiene reads GET sys/report/hygiene with tok from an API on the
// harness's node that has the access checks wired in, as the server does.
func (h *harness) hygiene(tok string) []transit.Finding {
	h.t.Helper()
	api, err := NewAPI(Config{Node: h.node, Transit: h.engine, Audit: h.node.AuditLog(), APIAddr: "http://127.0.0.1:8200",
		HygieneChecks: []HygieneCheck{AccessHygiene(h.node, nil)}})
	if err != nil {
		h.t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/sys/report/hygiene", nil)
	req.Header.Set("X-Vault-Token", tok)
	res, err := srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Data struct {
			Findings []transit.Finding `json:"findings"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 200 {
		h.t.Fatalf("hygiene report: %d %v", res.StatusCode, err)
	}
	return body.Data.Findings
}

// accessCheck reports whether a finding is one of the access checks.
func accessCheck(f transit.Finding) bool {
	for _, p := range []string{"policy-", "token-", "root-token-", "key-name-in-several-namespaces"} {
		if strings.HasPrefix(f.Check, p) {
			return true
		}
	}
	return false
}

// TestAccessHygieneFindsEachMistake: each token and policy mistake made
// through the API is a finding that names its object, with a fix, at
// its severity; the sound objects beside them are not.
func TestAccessHygieneFindsEachMistake(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.putPolicy("decrypt-all", `path "transit/decrypt/*" { capabilities = ["update"] }`)
	h.putPolicy("transit-all", `path "transit/*" { capabilities = ["create", "read", "update"] }`)
	h.putPolicy("star", `path "*" { capabilities = ["update"] }`)
	h.putPolicy("office-hours", `path "transit/decrypt/*" {
  capabilities = ["update"]
  condition { source_cidrs = ["10.0.0.0/8"] }
}`)
	h.putPolicy("narrow", `path "transit/decrypt/app" { capabilities = ["update"] }
path "transit/backup/app" { capabilities = ["read"] }`)
	h.putPolicy("denies-decrypt", `path "transit/*" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["deny"] }`)
	h.must(200, "PUT", "sys/namespaces/prod", nil)
	if r := h.inNS("prod", h.token, "PUT", "sys/policies/acl/prod-all", map[string]any{"policy": `path "transit/decrypt/*" { capabilities = ["update"] }`}); r.status != 204 {
		t.Fatalf("prod policy: %d %s", r.status, r.raw)
	}
	forever := authOf(t, h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"narrow"}}))["accessor"].(string)
	// A token with a TTL and an explicit max: no finding (see "unexpected" below).
	h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"narrow"}, "ttl": "1h", "explicit_max_ttl": "24h"})
	extraRoot := authOf(t, h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"root"}}))["accessor"].(string)
	initialRoot := h.must(200, "GET", "auth/token/lookup-self", nil).str("accessor")
	h.createKey("shared", nil)
	h.createKey("rootonly", nil)
	for _, k := range []string{"shared", "prodonly"} {
		if r := h.inNS("prod", h.token, "POST", "transit/keys/"+k, nil); r.status != 200 {
			t.Fatalf("prod key %s: %d %s", k, r.status, r.raw)
		}
	}

	type want struct{ severity, check, object, ns string }
	got := map[want]transit.Finding{}
	fixes := map[string]string{}
	for _, f := range h.hygiene(h.token) {
		fixes[f.Object] = f.Fix
		if !accessCheck(f) {
			continue
		}
		if f.Message == "" || f.Fix == "" {
			t.Errorf("finding without a message or fix: %+v", f)
		}
		got[want{f.Severity, f.Check, f.Object, f.Namespace}] = f
	}
	wants := []want{
		{"critical", "policy-all-keys-decrypt", "policy:decrypt-all", ""},
		{"critical", "policy-all-keys-decrypt", "policy:transit-all", ""},
		{"critical", "policy-all-keys-export", "policy:transit-all", ""},
		{"critical", "policy-all-keys-backup", "policy:transit-all", ""},
		{"critical", "policy-all-keys-decrypt", "policy:star", ""},
		{"warning", "policy-all-keys-decrypt", "policy:office-hours", ""},
		{"critical", "policy-all-keys-decrypt", "policy:prod-all", "prod"},
		{"warning", "token-no-ttl", "token:" + forever, ""},
		{"critical", "root-token-extra", "token:" + extraRoot, ""},
		{"warning", "root-token-used", "token:" + initialRoot, ""},
		{"info", "key-name-in-several-namespaces", "key:shared", ""},
	}
	for _, w := range wants {
		if _, ok := got[w]; !ok {
			t.Errorf("missing finding %+v", w)
		}
		delete(got, w)
	}
	for w, f := range got {
		t.Errorf("unexpected finding %+v: %s", w, f.Message)
	}
	if fix := fixes["token:"+forever]; !strings.Contains(fix, "-accessor "+forever) {
		t.Errorf("the no-TTL fix does not name the accessor: %q", fix)
	}
	if fix := fixes["policy:prod-all"]; !strings.Contains(fix, "-namespace=prod prod-all") {
		t.Errorf("the namespaced policy's fix: %q", fix)
	}
}

// TestAccessHygieneCleanSetup: a setup that keeps the rules (narrow
// policies, tokens with a TTL and an explicit max, the root token revoked
// after setup, distinct key names per namespace) has no token or policy
// findings.
func TestAccessHygieneCleanSetup(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.putPolicy("app", `path "transit/encrypt/app" { capabilities = ["update"] }
path "transit/decrypt/app" { capabilities = ["update"] }`)
	h.putPolicy("auditor", `path "sys/report/hygiene" { capabilities = ["read"] }`)
	h.createKey("app", nil)
	h.must(200, "PUT", "sys/namespaces/prod", nil)
	if r := h.inNS("prod", h.token, "POST", "transit/keys/pay", nil); r.status != 200 {
		t.Fatalf("prod key: %d %s", r.status, r.raw)
	}
	bounded := map[string]any{"ttl": "1h", "explicit_max_ttl": "24h"}
	bounded["policies"] = []string{"app"}
	h.must(200, "POST", "auth/token/create-orphan", bounded)
	bounded["policies"] = []string{"auditor"}
	auditor := authOf(t, h.must(200, "POST", "auth/token/create-orphan", bounded))["client_token"].(string)
	h.must(204, "POST", "auth/token/revoke-self", nil)
	for _, f := range h.hygiene(auditor) {
		if accessCheck(f) {
			t.Errorf("finding on a clean setup: %+v", f)
		}
	}
}

// BenchmarkAccessHygiene: the access checks of one report on a node with
// 50 policies, 500 tokens and the audit events of making them.
func BenchmarkAccessHygiene(b *testing.B) {
	h := newHarness(b, harnessOpts{raftAudit: true})
	for i := range 50 {
		h.putPolicy("p"+strconv.Itoa(i), `path "transit/decrypt/app`+strconv.Itoa(i)+`" { capabilities = ["update"] }
path "transit/keys/*" { capabilities = ["read"] }`)
	}
	for i := range 500 {
		h.must(200, "POST", "auth/token/create-orphan", map[string]any{"policies": []string{"p" + strconv.Itoa(i%50)}, "ttl": "1h"})
	}
	check := AccessHygiene(h.node, nil)
	ctx := context.Background()
	for b.Loop() {
		if _, err := check(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
