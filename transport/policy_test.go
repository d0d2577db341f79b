package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/audit"
)

// newToken makes a token with policies through the real token API, as
// root, and returns it.
func (h *harness) newToken(policies ...string) string {
	h.t.Helper()
	r := h.must(200, "POST", "auth/token/create", map[string]any{"policies": policies})
	auth, _ := r.body["auth"].(map[string]any)
	tok, _ := auth["client_token"].(string)
	if tok == "" {
		h.t.Fatalf("token create: no client_token in %s", r.raw)
	}
	return tok
}

// as sends a request with another token.
func (h *harness) as(token, method, path string, body any) resp {
	h.t.Helper()
	return h.doWith(method, path, body, map[string]string{"X-Vault-Token": token})
}

func (h *harness) putPolicy(name, src string) {
	h.t.Helper()
	h.must(204, "PUT", "sys/policies/acl/"+name, map[string]any{"policy": src})
}

func TestPolicyAPI(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	src := "path \"transit/encrypt/app\" {\n  capabilities = [\"update\"]\n}\n"
	h.putPolicy("app", src)
	if r := h.must(200, "GET", "sys/policies/acl/app", nil); r.str("policy") != src || r.str("name") != "app" {
		t.Fatalf("read: %s", r.raw)
	}
	if r := h.must(200, "GET", "sys/policy/app", nil); r.str("rules") != src {
		t.Fatalf("read through the alias: %s", r.raw)
	}
	list := h.must(200, "LIST", "sys/policies/acl", nil).data()["keys"]
	if b, _ := json.Marshal(list); string(b) != `["app","default","root"]` {
		t.Fatalf("list: %s", b)
	}
	// The built-in default exists without being written; root cannot be
	// written, neither can be deleted.
	if r := h.must(200, "GET", "sys/policies/acl/default", nil); !strings.Contains(r.str("policy"), "auth/token/lookup-self") {
		t.Fatalf("default: %s", r.raw)
	}
	if r := h.do("PUT", "sys/policies/acl/root", map[string]any{"policy": src}); r.status != 400 {
		t.Fatalf("write root: %d %s", r.status, r.raw)
	}
	for _, name := range []string{"root", "default"} {
		if r := h.do("DELETE", "sys/policies/acl/"+name, nil); r.status != 400 {
			t.Fatalf("delete %s: %d %s", name, r.status, r.raw)
		}
	}
	// A parse error names the line and column.
	r := h.do("PUT", "sys/policies/acl/bad", map[string]any{"policy": "path \"transit/*\" {\n  capabilities = [\"raed\"]\n}\n"})
	if r.status != 400 || !strings.Contains(r.errs()[0], "bad:2,") || !strings.Contains(r.errs()[0], `did you mean "read"`) {
		t.Fatalf("parse error: %d %s", r.status, r.raw)
	}
	if r := h.do("PUT", "sys/policies/acl/bad", map[string]any{"nope": 1}); r.status != 400 {
		t.Fatalf("no policy field: %d %s", r.status, r.raw)
	}
	h.must(404, "GET", "sys/policies/acl/bad", nil)
	h.must(204, "DELETE", "sys/policies/acl/app", nil)
	h.must(404, "GET", "sys/policies/acl/app", nil)
}

// TestEncryptOnlyTokenCannotDecrypt is the "done when": over HTTP
// on a real node, a token whose policy grants encrypt cannot decrypt, and
// the refusal is an audit event with outcome "denied".
func TestEncryptOnlyTokenCannotDecrypt(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", nil)
	h.putPolicy("encrypt-only", `path "transit/encrypt/app" { capabilities = ["update"] }`)
	tok := h.newToken("encrypt-only")

	enc := h.as(tok, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("secret")})
	if enc.status != 200 || !strings.HasPrefix(enc.str("ciphertext"), "vault:v1:") {
		t.Fatalf("encrypt: %d %s", enc.status, enc.raw)
	}
	dec := h.as(tok, "POST", "transit/decrypt/app", map[string]any{"ciphertext": enc.str("ciphertext")})
	if dec.status != 403 || !strings.HasPrefix(dec.errs()[0], "permission denied") {
		t.Fatalf("decrypt with an encrypt-only token: %d %s", dec.status, dec.raw)
	}
	if strings.Contains(string(dec.raw), "plaintext") {
		t.Fatalf("denial carries a result: %s", dec.raw)
	}
	ev := h.audit.last()
	if ev.Outcome != "denied" || ev.Status != 403 || ev.Operation != "transit/decrypt" || ev.Identity == "" {
		t.Fatalf("denial event: %+v", ev)
	}
	// Not even creating a key by encrypting under a new name (create, not update).
	if r := h.as(tok, "POST", "transit/encrypt/other", map[string]any{"plaintext": b64("x")}); r.status != 403 {
		t.Fatalf("encrypt under another key: %d %s", r.status, r.raw)
	}
	// The root token keeps full access.
	h.must(200, "POST", "transit/decrypt/app", map[string]any{"ciphertext": enc.str("ciphertext")})
	// Default policy: lookup-self works, listing keys does not.
	if r := h.as(tok, "GET", "auth/token/lookup-self", nil); r.status != 200 {
		t.Fatalf("lookup-self: %d %s", r.status, r.raw)
	}
	if r := h.as(tok, "LIST", "transit/keys", nil); r.status != 403 {
		t.Fatalf("list keys: %d", r.status)
	}
}

// TestAuthorizeTable runs the pipeline's authorization over a table of
// policies and requests (on a real node: the policies go through Raft).
func TestAuthorizeTable(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", nil)
	h.createKey("web", nil)
	h.putPolicy("ops", `
path "transit/keys/*" { capabilities = ["read", "list"] }
path "transit/decrypt/*" { capabilities = ["deny"] }
path "sys/rotate" { capabilities = ["update"] }
path "sys/key-status" { capabilities = ["read", "sudo"] }
path "sys/policies/acl/*" { capabilities = ["create", "update", "read"] }
`)
	h.putPolicy("tenant", `
path "transit/encrypt/app" {
  capabilities = ["update"]
  condition { required_context = { tenant = "acme" } }
}
path "transit/encrypt/web" {
  capabilities = ["update"]
  condition { source_cidrs = ["10.0.0.0/8"] }
}
path "transit/decrypt/app" {
  capabilities = ["update"]
  condition { time_window = "08:00-18:00" }
}
`)
	ops := h.newToken("ops")
	tenant := h.newToken("tenant")
	ctxOf := func(m map[string]string) string {
		b, _ := json.Marshal(m)
		return base64.StdEncoding.EncodeToString(b)
	}
	ct := h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")}).str("ciphertext")
	noon := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	night := time.Date(2026, 1, 1, 23, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name         string
		token        string
		at           time.Time
		method, path string
		body         any
		want         int
	}{
		{"read a key", ops, noon, "GET", "transit/keys/app", nil, 200},
		{"list keys", ops, noon, "LIST", "transit/keys", nil, 200}, // a list is of transit/keys/, which transit/keys/* covers
		{"rotate a key: no update", ops, noon, "POST", "transit/keys/app/rotate", nil, 403},
		{"decrypt denied", ops, noon, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}, 403},
		{"sys/rotate without sudo", ops, noon, "POST", "sys/rotate", nil, 403},
		{"key-status with sudo", ops, noon, "GET", "sys/key-status", nil, 200},
		{"policy write", ops, noon, "PUT", "sys/policies/acl/x", map[string]any{"policy": `path "a" { capabilities = ["read"] }`}, 204},
		{"policy delete: no delete", ops, noon, "DELETE", "sys/policies/acl/x", nil, 403},
		{"context holds", tenant, noon, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x"), "associated_data": ctxOf(map[string]string{"tenant": "acme"})}, 200},
		{"context differs", tenant, noon, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x"), "associated_data": ctxOf(map[string]string{"tenant": "evil"})}, 403},
		{"context missing", tenant, noon, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")}, 403},
		{"batch: every item holds", tenant, noon, "POST", "transit/encrypt/app", map[string]any{"batch_input": []any{
			map[string]any{"plaintext": b64("x"), "associated_data": ctxOf(map[string]string{"tenant": "acme"})},
			map[string]any{"plaintext": b64("y"), "associated_data": ctxOf(map[string]string{"tenant": "acme", "x": "y"})}}}, 200},
		{"batch: one item fails", tenant, noon, "POST", "transit/encrypt/app", map[string]any{"batch_input": []any{
			map[string]any{"plaintext": b64("x"), "associated_data": ctxOf(map[string]string{"tenant": "acme"})},
			map[string]any{"plaintext": b64("y")}}}, 403},
		{"source not in cidrs", tenant, noon, "POST", "transit/encrypt/web", map[string]any{"plaintext": b64("x")}, 403},
		{"inside the time window", tenant, noon, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}, 200},
		{"outside the time window", tenant, night, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}, 403},
		{"root at night", h.token, night, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}, 200},
		{"no token", "", noon, "GET", "transit/keys/app", nil, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			at := c.at
			h.api.SetClock(func() time.Time { return at })
			defer h.api.SetClock(nil)
			r := h.with(t).as(c.token, c.method, c.path, c.body)
			if r.status != c.want {
				t.Fatalf("%s %s: %d, want %d: %s", c.method, c.path, r.status, c.want, r.raw)
			}
			if r.status == 403 {
				if ev := h.audit.last(); ev.Outcome != "denied" {
					t.Fatalf("denial recorded as %q", ev.Outcome)
				}
				if c.token == ops && strings.Contains(r.errs()[0], "tenant") {
					t.Fatalf("reason leaks another policy: %s", r.raw)
				}
			}
		})
	}
	// A denial names only the caller's own policies.
	r := h.as(ops, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")})
	if r.status != 403 || strings.Contains(r.errs()[0], "tenant") {
		t.Fatalf("denial: %s", r.raw)
	}
}

// TestPolicyCacheSeesChanges: a rewritten policy applies to the next
// request; a deleted one grants nothing.
func TestPolicyCacheSeesChanges(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", nil)
	h.putPolicy("p", `path "transit/keys/app" { capabilities = ["read"] }`)
	tok := h.newToken("p")
	if r := h.as(tok, "GET", "transit/keys/app", nil); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	h.putPolicy("p", `path "transit/keys/web" { capabilities = ["read"] }`)
	if r := h.as(tok, "GET", "transit/keys/app", nil); r.status != 403 {
		t.Fatalf("after rewrite: %d", r.status)
	}
	h.putPolicy("p", `path "transit/keys/app" { capabilities = ["read"] }`)
	h.as(tok, "GET", "transit/keys/app", nil)
	h.must(204, "DELETE", "sys/policies/acl/p", nil)
	if r := h.as(tok, "GET", "transit/keys/app", nil); r.status != 403 {
		t.Fatalf("after delete: %d", r.status)
	}
}

// BenchmarkAuthorize is the per-request cost of authorization for a
// token with three policies (cached, as on the hot path): an encrypt
// (with Vault's existence check of the key), a decrypt refused by a deny
// rule, and a read; and the root token's encrypt.
func BenchmarkAuthorize(b *testing.B) {
	h := newHarness(b, harnessOpts{discardAudit: true})
	for _, name := range []string{"a", "b", "c"} {
		h.putPolicy(name, `
path "transit/encrypt/`+name+`*" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["deny"] }
path "transit/keys/+/rotate" {
  capabilities = ["update"]
  condition { source_cidrs = ["127.0.0.0/8"] }
}
path "sys/*" { capabilities = ["read"] }
`)
	}
	h.createKey("c1", nil)
	te, _, err := createTestToken(h, []string{"default", "a", "b", "c"})
	if err != nil {
		b.Fatal(err)
	}
	root, err := h.node.Access().LookupToken(h.token)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, method, path string
		te                 *access.TokenEntry
		allowed            bool
	}{
		{"encrypt", "POST", "transit/encrypt/c1", te, true},
		{"decrypt-denied", "POST", "transit/decrypt/c1", te, false},
		{"read", "GET", "sys/leader", te, true},
		{"root-encrypt", "POST", "transit/encrypt/c1", root, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := &request{ctx: context.Background(), method: c.method, path: c.path, ev: newTestEvent()}
			if r := h.api.authorize(req, c.te); (r == nil) != c.allowed {
				b.Fatalf("allowed = %v, want %v: %+v", r == nil, c.allowed, r)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.api.authorize(req, c.te)
			}
		})
	}
}

func createTestToken(h *harness, policies []string) (*access.TokenEntry, string, error) {
	tok, e, err := h.node.Access().CreateToken(context.Background(), access.TokenRequest{Policies: policies, Now: time.Now()})
	return e, tok, err
}

func newTestEvent() *audit.Event { return &audit.Event{RemoteAddr: "127.0.0.1"} }

// BenchmarkEncrypt32BPolicyToken is BenchmarkEncrypt32B (HTTP, audit
// events discarded) with a token of three policies instead of the root
// token: the whole cost of authorization on the hot path.
func BenchmarkEncrypt32BPolicyToken(b *testing.B) {
	h := newHarness(b, harnessOpts{discardAudit: true})
	for _, name := range []string{"a", "b", "c"} {
		h.putPolicy(name, `
path "transit/encrypt/bench" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["deny"] }
path "sys/*" { capabilities = ["read"] }
path "transit/keys/bench" { capabilities = ["update"] }
`)
	}
	tok := h.newToken("a", "b", "c")
	hp := *h
	hp.token = tok
	benchEncryptOn(b, &hp, 32)
}
