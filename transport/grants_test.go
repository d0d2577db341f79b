package transport

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/audit"
)

// TestGrantTwoPersonRule: a just-in-time grant is requested by one token,
// refused to the requester and to tokens made under it, approved by
// another identity, usable only by the requester for that key and
// operation, and gone at its TTL (judged by the node's clock; the tidy
// pass records its expiry).
func TestGrantTwoPersonRule(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", nil)
	h.createKey("web", nil)
	ct := h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("secret")}).str("ciphertext")
	ctWeb := h.must(200, "POST", "transit/encrypt/web", map[string]any{"plaintext": b64("secret")}).str("ciphertext")
	// The requester may request and (to show the rule, not the policy,
	// refuses) approve; it may also make child tokens.
	h.putPolicy("oncall", `
path "sys/grants" { capabilities = ["update", "read", "list"] }
path "sys/grants/approve" { capabilities = ["update"] }
path "auth/token/create" { capabilities = ["update"] }`)
	h.putPolicy("approver", `path "sys/grants/approve" { capabilities = ["update"] }`)
	now := time.Now().UTC()
	h.api.SetClock(func() time.Time { return now })
	req := h.newToken("oncall")
	appr := h.newToken("approver")
	child := authOf(t, h.as(req, "POST", "auth/token/create", nil))["client_token"].(string)

	decrypt := func(tok, key, ct string) int {
		return h.as(tok, "POST", "transit/decrypt/"+key, map[string]any{"ciphertext": ct}).status
	}
	if s := decrypt(req, "app", ct); s != 403 {
		t.Fatalf("decrypt before any grant: %d", s)
	}
	r := h.as(req, "POST", "sys/grants", map[string]any{"key": "app", "operation": "decrypt", "ttl": "10m", "reason": "INC-42 restore"})
	if r.status != 200 || r.str("state") != "pending" || r.str("id") == "" {
		t.Fatalf("request: %d %s", r.status, r.raw)
	}
	id := r.str("id")
	if s := decrypt(req, "app", ct); s != 403 {
		t.Fatalf("decrypt with a pending grant: %d", s)
	}
	for who, tok := range map[string]string{"requester": req, "requester's child": child} {
		r := h.as(tok, "POST", "sys/grants/approve", map[string]any{"id": id})
		if r.status != 403 || !strings.Contains(r.errs()[0], "another identity") {
			t.Fatalf("approval by the %s: %d %s", who, r.status, r.raw)
		}
	}
	r = h.as(appr, "POST", "sys/grants/approve", map[string]any{"id": id})
	if r.status != 200 || r.str("state") != "active" || num(r.data(), "ttl") != 600 {
		t.Fatalf("approval: %d %s", r.status, r.raw)
	}
	if r := h.as(appr, "POST", "sys/grants/approve", map[string]any{"id": id}); r.status != 400 {
		t.Fatalf("second approval: %d %s", r.status, r.raw)
	}
	if s := decrypt(req, "app", ct); s != 200 {
		t.Fatalf("decrypt with the active grant: %d", s)
	}
	if ev := h.audit.last(); ev.Details["grant"] != id || ev.Outcome != "allowed" {
		t.Fatalf("use not recorded with the grant: %+v", ev)
	}
	// Only the requester, only that key, only that operation.
	for name, s := range map[string]int{
		"approver decrypts": decrypt(appr, "app", ct),
		"child decrypts":    decrypt(child, "app", ct),
		"other key":         decrypt(req, "web", ctWeb),
		"other operation":   h.as(req, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")}).status,
	} {
		if s != 403 {
			t.Errorf("%s: %d, want 403", name, s)
		}
	}
	if r := h.as(req, "GET", "sys/grants", nil); r.status != 200 || len(r.data()["grants"].([]any)) != 1 {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	// Expiry by the clock, then the tidy pass.
	now = now.Add(10 * time.Minute)
	if s := decrypt(req, "app", ct); s != 403 {
		t.Fatalf("decrypt at the grant's TTL: %d", s)
	}
	n, err := h.node.TidyGrants(context.Background(), now)
	if err != nil || n != 1 {
		t.Fatalf("tidy: %d %v", n, err)
	}
	h.must(404, "GET", "sys/grants/"+id, nil)
	found := false
	h.node.AuditEvents(0, func(e *audit.Event) error {
		if e.Operation == "sys/grants/expire" && e.Details["grant"] == id {
			found = true
		}
		return nil
	})
	if !found {
		t.Fatal("grant expiry not in the audit log")
	}
	// Bad requests.
	for _, body := range []map[string]any{
		{"key": "app", "operation": "export", "reason": "x"},
		{"key": "app", "operation": "decrypt"},
		{"key": "app", "operation": "decrypt", "reason": "x", "ttl": "48h"},
		{"key": "a/b", "operation": "decrypt", "reason": "x"},
	} {
		if r := h.as(req, "POST", "sys/grants", body); r.status != 400 {
			t.Errorf("%v: %d %s", body, r.status, r.raw)
		}
	}
	// Revocation ends an active grant at once.
	id = h.as(req, "POST", "sys/grants", map[string]any{"key": "app", "operation": "decrypt", "reason": "again"}).str("id")
	h.as(appr, "POST", "sys/grants/approve", map[string]any{"id": id})
	if s := decrypt(req, "app", ct); s != 200 {
		t.Fatalf("second grant: %d", s)
	}
	h.must(204, "DELETE", "sys/grants/"+id, nil)
	if s := decrypt(req, "app", ct); s != 403 {
		t.Fatalf("after revoke: %d", s)
	}
}
