package transport

import (
	"context"
	"encoding/hex"
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
	req := h.newOrphan("oncall")
	appr := h.newOrphan("approver")
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
	n, err := h.node.Access().TidyGrants(context.Background(), now)
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

// TestAccessEventsInReplicatedLog: with the node's real audit log, a
// denial, a grant's request, approval, use and expiry, and a break-glass
// activation are all events of the replicated chain, with what they are
// about in their details.
func TestAccessEventsInReplicatedLog(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.createKey("app", nil)
	ct := h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")}).str("ciphertext")
	h.putPolicy("oncall", `path "sys/grants" { capabilities = ["update"] }`)
	h.putPolicy("approver", `path "sys/grants/approve" { capabilities = ["update"] }`)
	now := time.Now().UTC()
	h.api.SetClock(func() time.Time { return now })
	req, appr := h.newOrphan("oncall"), h.newOrphan("approver")
	if r := h.as(req, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}); r.status != 403 {
		t.Fatalf("denial: %d", r.status)
	}
	id := h.as(req, "POST", "sys/grants", map[string]any{"key": "app", "operation": "decrypt", "reason": "INC-9", "ttl": "5m"}).str("id")
	h.as(appr, "POST", "sys/grants/approve", map[string]any{"id": id})
	if r := h.as(req, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}); r.status != 200 {
		t.Fatalf("use: %d", r.status)
	}
	now = now.Add(5 * time.Minute)
	if _, err := h.node.Access().TidyGrants(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	h.putPolicy("emergency", `path "transit/*" { capabilities = ["update"] }`)
	h.must(204, "PUT", "sys/break-glass/config", map[string]any{"policy": "emergency"})
	start := h.doWith("POST", "sys/break-glass/attempt", nil, nil)
	h.doWith("POST", "sys/break-glass/update", map[string]any{"nonce": start.body["nonce"], "key": hex.EncodeToString(h.unsealKey)}, nil)

	seen := map[string]bool{}
	h.node.AuditEvents(0, func(e *audit.Event) error {
		switch {
		case e.Operation == "transit/decrypt" && e.Outcome == "denied" && e.Status == 403 && e.Details["grant"] == "":
			seen["denial"] = true
		case e.Operation == "sys/grants" && e.Method == "POST" && e.Details["grant"] == id && e.Key == "app":
			seen["request"] = true
		case e.Path == "/v1/sys/grants/approve" && e.Details["grant"] == id && e.Outcome == "allowed":
			seen["approval"] = true
		case e.Operation == "transit/decrypt" && e.Outcome == "allowed" && e.Details["grant"] == id:
			seen["use"] = true
		case e.Operation == "sys/grants/expire" && e.Details["grant"] == id:
			seen["expiry"] = true
		case e.Operation == "sys/break-glass" && e.Details["break_glass"] == "activated" && e.Details["policy"] == "emergency":
			seen["break-glass"] = true
		}
		return nil
	})
	for _, want := range []string{"denial", "request", "approval", "use", "expiry", "break-glass"} {
		if !seen[want] {
			t.Errorf("no %s event in the replicated audit log", want)
		}
	}
	if v, err := h.node.VerifyAudit(); err != nil || v.Problem != nil {
		t.Fatalf("chain: %+v %v", v, err)
	}
}
