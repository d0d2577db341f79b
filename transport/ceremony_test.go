package transport

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster"
)

// TestCeremonyNotResetByStrangers: a second start of generate-root,
// break-glass or rekey does not replace the ceremony in progress (it is
// refused with 400, and the first one still completes); a cancel ends it
// (without a token for generate-root and break-glass, as in Vault), and
// every start and cancel is in the replicated audit log with the caller's
// address and the step.
func TestCeremonyNotResetByStrangers(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	none := map[string]string{} // no token
	refused := func(r resp, what string) {
		t.Helper()
		if r.status != http.StatusBadRequest || len(r.errs()) == 0 || !strings.Contains(r.errs()[0], "already in progress") {
			t.Fatalf("%s while one is in progress: %d %s", what, r.status, r.raw)
		}
	}

	// generate-root
	first := h.doWith("PUT", "sys/generate-root/attempt", map[string]any{}, none)
	if first.status != 200 {
		t.Fatalf("start: %d %s", first.status, first.raw)
	}
	nonce, otp := first.body["nonce"].(string), first.body["otp"].(string)
	refused(h.doWith("PUT", "sys/generate-root/attempt", map[string]any{}, none), "a second generate-root start")
	if st := h.doWith("GET", "sys/generate-root/attempt", nil, none); st.status != 200 || st.body["started"] != true || st.body["nonce"] != nonce {
		t.Fatalf("status: %d %s", st.status, st.raw)
	}
	r := h.doWith("PUT", "sys/generate-root/update", map[string]any{"nonce": nonce, "key": hex.EncodeToString(h.unsealKey)}, none)
	if r.status != 200 || r.body["complete"] != true {
		t.Fatalf("the first attempt's share: %d %s", r.status, r.raw)
	}
	tok, err := cluster.DecodeRootToken(r.body["encoded_token"].(string), otp)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.as(tok, "GET", "auth/token/lookup-self", nil); r.status != 200 {
		t.Fatalf("the generated token: %d", r.status)
	}
	second := h.doWith("PUT", "sys/generate-root/attempt", map[string]any{}, none)
	if second.status != 200 {
		t.Fatalf("start after the completion: %d %s", second.status, second.raw)
	}
	h.must(204, "DELETE", "sys/generate-root/attempt", nil) // with a token
	h.doWith("PUT", "sys/generate-root/attempt", map[string]any{}, none)
	if r := h.doWith("DELETE", "sys/generate-root/attempt", nil, none); r.status != 204 {
		t.Fatalf("cancel without a token: %d %s", r.status, r.raw)
	}

	// break-glass
	h.putPolicy("emergency", `path "transit/decrypt/*" { capabilities = ["update"] }`)
	h.must(204, "PUT", "sys/break-glass/config", map[string]any{"policy": "emergency"})
	bg := h.doWith("POST", "sys/break-glass/attempt", map[string]any{"duration": "30m"}, none)
	if bg.status != 200 {
		t.Fatalf("break-glass start: %d %s", bg.status, bg.raw)
	}
	refused(h.doWith("POST", "sys/break-glass/attempt", map[string]any{"duration": "30m"}, none), "a second break-glass start")
	if st := h.doWith("GET", "sys/break-glass/attempt", nil, none); st.body["nonce"] != bg.body["nonce"] {
		t.Fatalf("break-glass attempt replaced: %s", st.raw)
	}
	if r := h.doWith("DELETE", "sys/break-glass/attempt", nil, none); r.status != 204 {
		t.Fatalf("break-glass cancel without a token: %d", r.status)
	}
	if r := h.doWith("POST", "sys/break-glass/attempt", map[string]any{"duration": "30m"}, none); r.status != 200 {
		t.Fatalf("break-glass start after the cancel: %d %s", r.status, r.raw)
	}
	h.doWith("DELETE", "sys/break-glass/attempt", nil, none)

	// rekey (root token, as before) and rekey-recovery-key: one operation
	rk := h.must(200, "PUT", "sys/rekey/init", map[string]any{"secret_shares": 3, "secret_threshold": 2})
	refused(h.do("PUT", "sys/rekey/init", map[string]any{"secret_shares": 1, "secret_threshold": 1}), "a second rekey init")
	refused(h.do("PUT", "sys/rekey-recovery-key/init", map[string]any{"secret_shares": 1, "secret_threshold": 1}), "a rekey-recovery-key init")
	h.must(204, "DELETE", "sys/rekey/init", nil)
	h.must(200, "PUT", "sys/rekey/init", map[string]any{"secret_shares": 1, "secret_threshold": 1})
	h.must(204, "DELETE", "sys/rekey/init", nil)

	// The replicated audit log names every start and cancel, its caller's
	// address and its outcome.
	type step struct {
		op, action, nonce string
		status            int
	}
	var got []step
	err = h.node.AuditEvents(0, func(e *audit.Event) error {
		if e.Details["ceremony"] == "" {
			return nil
		}
		if e.RemoteAddr != "127.0.0.1" {
			t.Errorf("%s %s %s: remote_addr %q", e.Operation, e.Method, e.Details["action"], e.RemoteAddr)
		}
		got = append(got, step{e.Operation, e.Details["action"], e.Details["nonce"], e.Status})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []step{
		{"sys/generate-root", "start", nonce, 200},
		{"sys/generate-root", "start", "", 400},
		{"sys/generate-root", "start", second.body["nonce"].(string), 200},
		{"sys/generate-root", "cancel", second.body["nonce"].(string), 204},
		{"sys/generate-root", "start", "", 200},
		{"sys/generate-root", "cancel", "", 204},
		{"sys/break-glass", "start", bg.body["nonce"].(string), 200},
		{"sys/break-glass", "start", "", 400},
		{"sys/break-glass", "cancel", bg.body["nonce"].(string), 204},
		{"sys/break-glass", "start", "", 200},
		{"sys/break-glass", "cancel", "", 204},
		{"sys/rekey", "start", rk.body["nonce"].(string), 200},
		{"sys/rekey", "start", "", 400},
		{"sys/rekey-recovery-key", "start", "", 400},
		{"sys/rekey", "cancel", rk.body["nonce"].(string), 204},
		{"sys/rekey", "start", "", 200},
		{"sys/rekey", "cancel", "", 204},
	}
	if len(got) != len(want) {
		t.Fatalf("ceremony events:\n got %+v\nwant %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.op != w.op || g.action != w.action || g.status != w.status || (w.nonce != "" && g.nonce != w.nonce) || g.nonce == "" && w.status < 300 {
			t.Errorf("event %d: got %+v, want %+v", i, g, w)
		}
	}
}
