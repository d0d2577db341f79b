package transport

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster"
)

func (h *harness) metric(name string) string {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL+"/v1/sys/metrics", nil)
	req.Header.Set("X-Vault-Token", h.token)
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	h.t.Fatalf("metric %s not found (status %d)", name, res.StatusCode)
	return ""
}

// TestBreakGlass: the emergency policy comes only from the shares, on a
// fresh token that expires by itself; while it is on, a metric says so
// and the activation is in the audit log; at its end the tidy pass
// records the expiry.
func TestBreakGlass(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", nil)
	ct := h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("secret")}).str("ciphertext")
	now := time.Now().UTC()
	h.api.SetClock(func() time.Time { return now })

	if r := h.doWith("POST", "sys/break-glass/attempt", nil, nil); r.status != 400 || !strings.Contains(r.errs()[0], "not configured") {
		t.Fatalf("attempt before config: %d %s", r.status, r.raw)
	}
	h.putPolicy("emergency", `path "transit/decrypt/*" { capabilities = ["update"] }`)
	h.putPolicy("ops", `path "sys/break-glass/config" { capabilities = ["update", "read"] }`)
	if r := h.as(h.newToken("ops"), "PUT", "sys/break-glass/config", map[string]any{"policy": "emergency"}); r.status != 403 {
		t.Fatalf("config without sudo: %d %s", r.status, r.raw)
	}
	for _, bad := range []map[string]any{{"policy": "root"}, {"policy": "nope"}, {"policy": "emergency", "duration": "48h"}} {
		if r := h.do("PUT", "sys/break-glass/config", bad); r.status != 400 {
			t.Fatalf("config %v: %d %s", bad, r.status, r.raw)
		}
	}
	h.must(204, "PUT", "sys/break-glass/config", map[string]any{"policy": "emergency"})
	if got := h.metric("keyraft_break_glass_active"); got != "0" {
		t.Fatalf("gauge before: %s", got)
	}
	if r := h.doWith("POST", "sys/break-glass/attempt", map[string]any{"duration": "25h"}, nil); r.status != 400 {
		t.Fatalf("attempt over 24h: %d", r.status)
	}
	start := h.doWith("POST", "sys/break-glass/attempt", map[string]any{"duration": "30m"}, nil)
	if start.status != 200 || start.body["nonce"] == "" {
		t.Fatalf("attempt: %d %s", start.status, start.raw)
	}
	nonce, otp := start.body["nonce"].(string), start.body["otp"].(string)
	if r := h.doWith("POST", "sys/break-glass/update", map[string]any{"nonce": nonce, "key": hex.EncodeToString([]byte("not a share at all"))}, nil); r.status < 400 {
		t.Fatalf("wrong share: %d %s", r.status, r.raw)
	}
	// The attempt survives a wrong share (its progress restarts).
	r := h.doWith("POST", "sys/break-glass/update", map[string]any{"nonce": nonce, "key": hex.EncodeToString(h.unsealKey)}, nil)
	if r.status != 200 || r.body["complete"] != true {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	if ev := h.audit.last(); ev.Details["break_glass"] != "activated" || ev.Details["policy"] != "emergency" {
		t.Fatalf("activation event: %+v", ev)
	}
	tok, err := cluster.DecodeRootToken(r.body["encoded_token"].(string), otp)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.as(tok, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}); r.status != 200 {
		t.Fatalf("decrypt with the break-glass token: %d %s", r.status, r.raw)
	}
	if r := h.as(tok, "POST", "transit/keys/app/rotate", nil); r.status != 403 {
		t.Fatalf("break-glass token beyond its policy: %d", r.status)
	}
	look := h.as(tok, "GET", "auth/token/lookup-self", nil)
	if look.data()["renewable"] != false || num(look.data(), "ttl") != 1800 {
		t.Fatalf("break-glass token: %s", look.raw)
	}
	if got := h.metric("keyraft_break_glass_active"); got != "1" {
		t.Fatalf("gauge while active: %s", got)
	}
	if st := h.doWith("GET", "sys/break-glass/attempt", nil, nil); st.body["active"] != true {
		t.Fatalf("status: %s", st.raw)
	}
	// Time's up: refused at use, gauge down, session removed with an event.
	now = now.Add(30 * time.Minute)
	if r := h.as(tok, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}); r.status != 403 {
		t.Fatalf("after expiry: %d", r.status)
	}
	if got := h.metric("keyraft_break_glass_active"); got != "0" {
		t.Fatalf("gauge after expiry: %s", got)
	}
	if _, err := h.node.Access().TidyGrants(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	found := false
	h.node.AuditEvents(0, func(e *audit.Event) error {
		found = found || e.Operation == "sys/break-glass/expire"
		return nil
	})
	if !found {
		t.Fatal("break-glass expiry not in the audit log")
	}
	if s, err := h.node.Access().BreakGlassSession(now.Add(-time.Hour)); err != nil || s != nil {
		t.Fatalf("session record kept: %+v %v", s, err)
	}
}
