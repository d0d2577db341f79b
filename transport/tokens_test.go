package transport

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/store"
)

// putToken writes a token entry the way the cluster stores it.
func putToken(t *testing.T, h *harness, token string, e *access.TokenEntry) {
	t.Helper()
	w := store.Write{Key: access.TokenRecord(token), Delete: e == nil}
	if e != nil {
		w.Value, _ = json.Marshal(e)
	}
	if _, err := h.node.Commit(context.Background(), &store.Txn{Writes: []store.Write{w}}); err != nil {
		t.Fatal(err)
	}
}

// TestTokenCacheSeesChanges: the token cache never answers with an entry
// whose record changed or went away.
func TestTokenCacheSeesChanges(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	const tok = "kr.cached-token"
	hdr := map[string]string{"X-Vault-Token": tok}
	lookup := func() resp { return h.doWith("GET", "auth/token/lookup-self", nil, hdr) }

	if r := lookup(); r.status != 403 {
		t.Fatalf("unknown token: %d", r.status)
	}
	putToken(t, h, tok, &access.TokenEntry{Accessor: "acc-1", Policies: []string{"root"}, DisplayName: "one"})
	for range 3 { // first lookup fills the cache, the others use it
		if r := lookup(); r.status != 200 || r.str("accessor") != "acc-1" {
			t.Fatalf("lookup: %d %s", r.status, r.raw)
		}
	}
	putToken(t, h, tok, &access.TokenEntry{Accessor: "acc-2", Policies: []string{"default"}, DisplayName: "two"})
	if r := lookup(); r.status != 200 || r.str("accessor") != "acc-2" || r.str("display_name") != "two" {
		t.Fatalf("changed entry not seen: %s", r.raw)
	}
	// A token without the root policy may not seal.
	if r := h.doWith("POST", "sys/seal", nil, hdr); r.status != 403 || !strings.HasPrefix(r.errs()[0], "permission denied: ") {
		t.Fatalf("seal with a non-root token: %d %s", r.status, r.raw)
	}
	putToken(t, h, tok, nil) // revoked
	if r := lookup(); r.status != 403 || r.errs()[0] != "permission denied: invalid token" {
		t.Fatalf("revoked token: %d %s", r.status, r.raw)
	}
	// Recreated: valid again, with the new entry.
	putToken(t, h, tok, &access.TokenEntry{Accessor: "acc-3", Policies: []string{"root"}})
	if r := lookup(); r.status != 200 || r.str("accessor") != "acc-3" {
		t.Fatalf("recreated token: %s", r.raw)
	}
	// Sealing drops the cache; after unseal the token still works.
	h.must(204, "POST", "sys/seal", nil)
	if kept := h.node.Access().CachedTokens(); kept != 0 {
		t.Fatal("token cache kept across seal")
	}
	if r := lookup(); r.status != 503 {
		t.Fatalf("lookup while sealed: %d", r.status)
	}
	h.must(200, "POST", "sys/unseal", map[string]any{"key": hex.EncodeToString(h.unsealKey)})
	if r := lookup(); r.status != 200 || r.str("accessor") != "acc-3" {
		t.Fatalf("after unseal: %s", r.raw)
	}
}

// TestOversizedChunkedBody: a body without Content-Length is cut at the
// limit too.
func TestOversizedChunkedBody(t *testing.T) {
	h := newHarness(t, harnessOpts{maxRequestSize: 1024})
	body := `{"plaintext":"` + strings.Repeat("A", 4096) + `"}`
	req, _ := http.NewRequest("POST", h.srv.URL+"/v1/transit/encrypt/k", io.NopCloser(strings.NewReader(body)))
	req.Header.Set("X-Vault-Token", h.token)
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 413 || !strings.Contains(string(raw), "request body too large: the limit is 1024 bytes") {
		t.Fatalf("%d %s", res.StatusCode, raw)
	}
	h.must(404, "GET", "transit/keys/k", nil)
	// Just under the limit is fine.
	h.must(200, "POST", "transit/encrypt/k", `{"plaintext":"`+strings.Repeat("A", 1000)+`"}`)
}
