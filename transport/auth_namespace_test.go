package transport

import (
	"strings"
	"testing"
)

// TestNamespaces: keys, policies and tokens are scoped by
// X-Vault-Namespace; a token of one namespace can neither see nor use
// another's keys, and same-named keys of different namespaces are
// different keys.
func TestNamespaces(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	in := func(ns, tok, method, path string, body any) resp {
		t.Helper()
		return h.doWith(method, path, body, map[string]string{"X-Vault-Token": tok, "X-Vault-Namespace": ns})
	}
	for _, ns := range []string{"dev", "prod"} {
		if r := h.do("PUT", "sys/namespaces/"+ns, nil); r.status != 200 {
			t.Fatalf("create %s: %d %s", ns, r.status, r.raw)
		}
	}
	if r := h.do("PUT", "sys/namespaces/Bad.Name", nil); r.status != 400 {
		t.Fatalf("bad namespace name: %d", r.status)
	}
	pol := `path "transit/encrypt/app" { capabilities = ["update"] }
path "transit/decrypt/app" { capabilities = ["update"] }
path "transit/keys" { capabilities = ["list"] }
path "auth/token/lookup" { capabilities = ["update"] }`
	tokens := map[string]string{}
	for _, ns := range []string{"dev", "prod", ""} {
		if r := in(ns, h.token, "PUT", "sys/policies/acl/app", map[string]any{"policy": pol}); r.status != 204 {
			t.Fatalf("policy in %q: %d %s", ns, r.status, r.raw)
		}
		if r := in(ns, h.token, "POST", "transit/keys/app", nil); r.status != 200 {
			t.Fatalf("key in %q: %d %s", ns, r.status, r.raw)
		}
		a := authOf(t, in(ns, h.token, "POST", "auth/token/create", map[string]any{"policies": []string{"app"}}))
		tokens[ns] = a["client_token"].(string)
	}
	dev, prod := tokens["dev"], tokens["prod"]
	// The existence check looks in the namespace: a key only the root
	// namespace has is missing in prod, so encrypting would create it,
	// which prod's policy (update only) does not allow.
	h.must(200, "POST", "transit/keys/only-root", nil)
	h.putPolicy("root-ns-enc", `path "transit/encrypt/only-root" { capabilities = ["update"] }`)
	if r := in("prod", h.token, "PUT", "sys/policies/acl/enc2", map[string]any{"policy": `path "transit/encrypt/only-root" { capabilities = ["update"] }`}); r.status != 204 {
		t.Fatalf("policy: %d", r.status)
	}
	enc2 := authOf(t, in("prod", h.token, "POST", "auth/token/create", map[string]any{"policies": []string{"enc2"}}))["client_token"].(string)
	if r := in("prod", enc2, "POST", "transit/encrypt/only-root", map[string]any{"plaintext": b64("x")}); r.status != 403 {
		t.Fatalf("encrypt creating a key in prod with update only: %d %s", r.status, r.raw)
	}
	ct := in("prod", prod, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("prod secret")}).str("ciphertext")
	if ct == "" {
		t.Fatal("encrypt in prod failed")
	}
	if r := in("prod", prod, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}); r.status != 200 || r.str("plaintext") != b64("prod secret") {
		t.Fatalf("decrypt in prod: %d %s", r.status, r.raw)
	}
	// dev's token: not in prod, and dev's "app" is another key.
	if r := in("prod", dev, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}); r.status != 403 {
		t.Fatalf("dev token in prod: %d %s", r.status, r.raw)
	}
	if r := in("", dev, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}); r.status != 403 {
		t.Fatalf("dev token without a namespace: %d", r.status)
	}
	if r := in("dev", dev, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}); r.status == 200 {
		t.Fatalf("dev's key decrypted prod's ciphertext: %s", r.raw)
	}
	if r := in("", tokens[""], "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}); r.status == 200 {
		t.Fatalf("the root namespace's key decrypted prod's ciphertext: %s", r.raw)
	}
	// Lists show each namespace its own keys only.
	for ns, tok := range tokens {
		r := in(ns, tok, "LIST", "transit/keys", nil)
		want := 1
		if ns == "" {
			want = 2 // app and only-root
		}
		if keys, _ := r.data()["keys"].([]any); r.status != 200 || len(keys) != want || keys[0] != "app" {
			t.Fatalf("keys in %q: %d %s", ns, r.status, r.raw)
		}
	}
	if r := in("prod", h.token, "GET", "transit/keys/app", nil); r.str("name") != "app" {
		t.Fatalf("key read in prod names %q", r.str("name"))
	}
	// The reserved prefix, operator paths, other namespaces' tokens.
	if r := h.do("POST", "transit/keys/ns.prod.app/rotate", nil); r.status != 400 {
		t.Fatalf("reserved key name in the root namespace: %d %s", r.status, r.raw)
	}
	if r := in("prod", h.token, "POST", "sys/seal", nil); r.status != 400 {
		t.Fatalf("sys/seal in a namespace: %d", r.status)
	}
	if r := in("prod", prod, "POST", "auth/token/lookup", map[string]any{"token": dev}); r.status != 403 {
		t.Fatalf("lookup of another namespace's token: %d %s", r.status, r.raw)
	}
	if r := in("prod", prod, "POST", "auth/token/lookup", map[string]any{"token": prod}); r.status != 200 {
		t.Fatalf("lookup in its own namespace: %d %s", r.status, r.raw)
	}
	if r := in("nope", h.token, "LIST", "transit/keys", nil); r.status != 400 {
		t.Fatalf("unknown namespace: %d", r.status)
	}
	// Deleting a namespace ends its tokens (once its keys are deleted).
	in("dev", h.token, "POST", "transit/keys/app/config", map[string]any{"deletion_allowed": true})
	if r := in("dev", h.token, "DELETE", "transit/keys/app", nil); r.status != 204 {
		t.Fatalf("delete dev's key: %d %s", r.status, r.raw)
	}
	h.must(204, "DELETE", "sys/namespaces/dev", nil)
	if r := in("dev", dev, "LIST", "transit/keys", nil); r.status < 400 {
		t.Fatalf("token of a deleted namespace: %d", r.status)
	}

	// The vault client's namespace support works unchanged.
	c := vaultClient(t, h.srv.URL, prod)
	c.SetNamespace("prod")
	sec, err := c.Logical().Write("transit/decrypt/app", map[string]any{"ciphertext": ct})
	if err != nil || sec.Data["plaintext"] != b64("prod secret") {
		t.Fatalf("vault client in prod: %v %v", err, sec)
	}
}

// TestNamespaceDeleteRevokesTokens: deleting a namespace revokes its
// tokens at once, so a namespace created again under the name (with a
// same-named policy and key) does not bring them back; a namespace that
// still holds keys is not deleted (400 naming why), and its tokens keep
// working meanwhile.
func TestNamespaceDeleteRevokesTokens(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pol := `path "transit/encrypt/app" { capabilities = ["update"] }
path "auth/token/create" { capabilities = ["update"] }`
	setup := func() {
		h.must(200, "PUT", "sys/namespaces/dev", nil)
		if r := h.inNS("dev", h.token, "PUT", "sys/policies/acl/app", map[string]any{"policy": pol}); r.status != 204 {
			t.Fatalf("policy: %d %s", r.status, r.raw)
		}
		if r := h.inNS("dev", h.token, "POST", "transit/keys/app", nil); r.status != 200 {
			t.Fatalf("key: %d %s", r.status, r.raw)
		}
	}
	setup()
	tok := authOf(t, h.inNS("dev", h.token, "POST", "auth/token/create", map[string]any{"policies": []string{"app"}}))["client_token"].(string)
	child := authOf(t, h.inNS("dev", tok, "POST", "auth/token/create", map[string]any{"policies": []string{"app"}}))["client_token"].(string)
	enc := func(tok string) int {
		return h.inNS("dev", tok, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")}).status
	}
	if enc(tok) != 200 || enc(child) != 200 {
		t.Fatal("the namespace's tokens do not work")
	}
	r := h.do("DELETE", "sys/namespaces/dev", nil)
	if r.status != 400 || len(r.errs()) == 0 || !strings.Contains(r.errs()[0], "still holds 1 transit key") {
		t.Fatalf("delete of a namespace with a key: %d %s", r.status, r.raw)
	}
	if enc(tok) != 200 {
		t.Fatal("token after the refused delete")
	}
	h.inNS("dev", h.token, "POST", "transit/keys/app/config", map[string]any{"deletion_allowed": true})
	if r := h.inNS("dev", h.token, "DELETE", "transit/keys/app", nil); r.status != 204 {
		t.Fatalf("delete key: %d %s", r.status, r.raw)
	}
	h.must(204, "DELETE", "sys/namespaces/dev", nil)
	for _, tk := range []string{tok, child} {
		if r := h.do("POST", "auth/token/lookup", map[string]any{"token": tk}); r.status != 403 && r.status != 400 {
			t.Fatalf("lookup of a deleted namespace's token as root: %d %s", r.status, r.raw)
		}
	}
	setup() // the same name, policy and key name again
	for _, tk := range []string{tok, child} {
		if s := enc(tk); s != 403 {
			t.Fatalf("old token in the recreated namespace: %d", s)
		}
	}
	fresh := authOf(t, h.inNS("dev", h.token, "POST", "auth/token/create", map[string]any{"policies": []string{"app"}}))["client_token"].(string)
	if enc(fresh) != 200 {
		t.Fatal("a new token in the recreated namespace does not work")
	}
}
