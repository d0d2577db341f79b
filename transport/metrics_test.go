package transport

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
)

// sys/metrics: Prometheus text for a root token (Vault's path), refused
// without one; the gauges and the request counter are there.
func TestSysMetrics(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.must(200, "POST", "transit/keys/m", nil)
	req := httptest.NewRequest("GET", "/v1/sys/metrics?format=prometheus", nil)
	rec := httptest.NewRecorder()
	h.api.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Fatalf("metrics without a token: %d", rec.Code)
	}
	req = httptest.NewRequest("GET", "/v1/sys/metrics", nil)
	req.Header.Set("X-Vault-Token", rootToken)
	rec = httptest.NewRecorder()
	h.api.ServeHTTP(rec, req)
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("metrics: %d %s", rec.Code, body)
	}
	for _, want := range []string{"keyraft_sealed 0", "keyraft_seal_healthy 1", "keyraft_raft_leader 1", "keyraft_audit_head_seq",
		`keyraft_requests_total{operation="transit/keys",status="200"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	req = httptest.NewRequest("GET", "/v1/sys/metrics?format=json", nil)
	req.Header.Set("X-Vault-Token", rootToken)
	rec = httptest.NewRecorder()
	h.api.ServeHTTP(rec, req)
	if rec.Code != 400 {
		t.Fatalf("metrics in an unknown format: %d", rec.Code)
	}
}

// sys/rekey: root only; init, wrong nonce, the current share, the new
// shares once; the node then unseals with the new share only.
func TestSysRekey(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if r := h.doWith("PUT", "sys/rekey/init", map[string]any{"secret_shares": 1, "secret_threshold": 1}, nil); r.status != 403 {
		t.Fatalf("rekey without a token: %d", r.status)
	}
	init := h.must(200, "PUT", "sys/rekey/init", map[string]any{"secret_shares": 1, "secret_threshold": 1})
	nonce, _ := init.body["nonce"].(string)
	if nonce == "" || init.body["required"] != float64(1) {
		t.Fatalf("rekey init: %s", init.raw)
	}
	h.must(400, "PUT", "sys/rekey/update", map[string]any{"nonce": "wrong", "key": b64("x")})
	done := h.must(200, "PUT", "sys/rekey/update", map[string]any{"nonce": nonce, "key": base64.StdEncoding.EncodeToString(h.unsealKey)})
	keys, _ := done.body["keys_base64"].([]any)
	if done.body["complete"] != true || len(keys) != 1 {
		t.Fatalf("rekey update: %s", done.raw)
	}
	h.must(204, "PUT", "sys/seal", nil)
	h.must(400, "PUT", "sys/unseal", map[string]any{"key": base64.StdEncoding.EncodeToString(h.unsealKey)})
	if st := h.must(200, "PUT", "sys/unseal", map[string]any{"key": keys[0]}); st.body["sealed"] != false {
		t.Fatalf("unseal with the new key: %s", st.raw)
	}
}
