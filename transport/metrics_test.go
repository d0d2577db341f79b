package transport

import (
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
