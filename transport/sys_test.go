package transport

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// TestInitUnsealSeal walks a node through its life over the API: not
// initialized, init with share validation, unseal progress and reset, a
// bad share, unseal, seal with a token, and unseal again.
func TestInitUnsealSeal(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	noToken := map[string]string{}

	if r := h.must(200, "GET", "sys/init", nil); r.body["initialized"] != false {
		t.Fatalf("sys/init %s", r.raw)
	}
	st := h.must(200, "GET", "sys/seal-status", nil).body
	if st["initialized"] != false || st["sealed"] != true || st["type"] != "shamir" {
		t.Fatalf("seal-status before init %v", st)
	}
	if r := h.doWith("GET", "sys/health", nil, noToken); r.status != 501 || r.body["initialized"] != false {
		t.Fatalf("health before init: %d %s", r.status, r.raw)
	}
	h.must(200, "GET", "sys/health?uninitcode=200", nil)
	// Nothing but status works before init.
	if r := h.doWith("POST", "transit/encrypt/k", map[string]any{"plaintext": b64("x")}, map[string]string{"X-Vault-Token": "anything"}); r.status != 503 {
		t.Fatalf("encrypt before init: %d", r.status)
	}
	h.must(400, "POST", "sys/unseal", map[string]any{"key": hex.EncodeToString(make([]byte, 33))})

	for _, c := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{}, "secret_shares and secret_threshold are required"},
		{map[string]any{"secret_shares": 3}, "secret_shares and secret_threshold are required"},
		{map[string]any{"secret_shares": 0, "secret_threshold": 0}, "secret_shares must be between 1 and 255"},
		{map[string]any{"secret_shares": 256, "secret_threshold": 2}, "secret_shares must be between 1 and 255"},
		{map[string]any{"secret_shares": 3, "secret_threshold": 4}, "secret_threshold must be between 1 and secret_shares"},
		{map[string]any{"secret_shares": 3, "secret_threshold": 1}, "secret_threshold must be greater than 1 when there is more than one share"},
		{map[string]any{"secret_shares": "three", "secret_threshold": 2}, `field "secret_shares" must be an integer, got "three"`},
		{map[string]any{"secret_shares": 3, "secret_threshold": 2, "pgp_keys": []string{"x"}}, "pgp_keys is not supported"},
		{map[string]any{"secret_shares": 3, "secret_threshold": 2, "recovery_shares": 1}, "recovery_shares is only valid with an auto-unseal seal; this node uses shamir"},
		{map[string]any{"secret_shares": 3, "secret_threshold": 2, "stored_shares": "1"}, "stored_shares is only valid with an auto-unseal seal; this node uses shamir"},
		{map[string]any{"secret_shares": 3, "secret_threshold": 2, "root_token_pgp_key": "a2V5"}, "root_token_pgp_key is not supported"},
	} {
		r := h.doWith("POST", "sys/init", c.body, noToken)
		if r.status != 400 || len(r.errs()) != 1 || r.errs()[0] != c.msg {
			t.Fatalf("init %v: %d %s, want 400 %q", c.body, r.status, r.raw, c.msg)
		}
	}
	if h.node.Initialized() {
		t.Fatal("a refused init initialized the node")
	}

	// The shape the vault Go client sends: every field, unused ones zero.
	r := h.doWith("POST", "sys/init", map[string]any{
		"secret_shares": "3", "secret_threshold": "2", "stored_shares": 0, "pgp_keys": nil,
		"recovery_shares": 0, "recovery_threshold": 0, "recovery_pgp_keys": nil, "root_token_pgp_key": "",
	}, noToken)
	if r.status != 200 {
		t.Fatalf("init: %d %s", r.status, r.raw)
	}
	keysHex, _ := r.body["keys"].([]any)
	keysB64, _ := r.body["keys_base64"].([]any)
	token, _ := r.body["root_token"].(string)
	if len(keysHex) != 3 || len(keysB64) != 3 || !strings.HasPrefix(token, "kr.") {
		t.Fatalf("init answer %s", r.raw)
	}
	for i := range keysHex {
		hb, _ := hex.DecodeString(keysHex[i].(string))
		bb, _ := base64.StdEncoding.DecodeString(keysB64[i].(string))
		if len(hb) == 0 || string(hb) != string(bb) {
			t.Fatalf("share %d: hex and base64 differ", i)
		}
	}
	h.token = token
	if r := h.doWith("POST", "sys/init", map[string]any{"secret_shares": 1, "secret_threshold": 1}, noToken); r.status != 400 || r.errs()[0] != "keyraft is already initialized" {
		t.Fatalf("second init: %d %s", r.status, r.raw)
	}
	st = h.must(200, "GET", "sys/seal-status", nil).body
	if st["initialized"] != true || st["sealed"] != true || st["t"] != 2.0 || st["n"] != 3.0 || st["progress"] != 0.0 || st["cluster_id"] == "" || st["version"] != Version {
		t.Fatalf("seal-status after init %v", st)
	}
	if r := h.doWith("GET", "sys/health", nil, noToken); r.status != 503 || r.body["sealed"] != true {
		t.Fatalf("health sealed: %d %s", r.status, r.raw)
	}
	h.must(200, "GET", "sys/health?sealedcode=200", nil)

	// Progress, then reset.
	st = h.must(200, "POST", "sys/unseal", map[string]any{"key": keysHex[0]}).body
	if st["progress"] != 1.0 || st["sealed"] != true {
		t.Fatalf("after one share %v", st)
	}
	st = h.must(200, "POST", "sys/unseal", map[string]any{"reset": true}).body
	if st["progress"] != 0.0 {
		t.Fatalf("after reset %v", st)
	}
	// A share that does not belong: the attempt fails and progress resets.
	h.must(200, "POST", "sys/unseal", map[string]any{"key": keysHex[0]})
	bad, _ := hex.DecodeString(keysHex[1].(string))
	bad[0] ^= 0xff
	r = h.must(400, "POST", "sys/unseal", map[string]any{"key": hex.EncodeToString(bad)})
	if !strings.HasPrefix(r.errs()[0], "unseal failed, invalid key: ") {
		t.Fatal(r.errs())
	}
	if st := h.must(200, "GET", "sys/seal-status", nil).body; st["sealed"] != true || st["progress"] != 0.0 {
		t.Fatalf("after a bad share %v", st)
	}
	// Base64 and hex shares mix.
	h.must(200, "POST", "sys/unseal", map[string]any{"key": keysB64[2]})
	st = h.must(200, "POST", "sys/unseal", map[string]any{"key": keysHex[1]}).body
	if st["sealed"] != false || st["progress"] != 0.0 {
		t.Fatalf("after threshold %v", st)
	}
	h.must(200, "GET", "sys/health", nil)

	// Use a key, seal with the token, check what still answers, unseal.
	ct := h.must(200, "POST", "transit/encrypt/k", map[string]any{"plaintext": b64("survives")}).str("ciphertext")
	if r := h.doWith("POST", "sys/seal", nil, noToken); r.status != 403 {
		t.Fatalf("seal without a token: %d", r.status)
	}
	if r := h.doWith("POST", "sys/seal", nil, map[string]string{"X-Vault-Token": token}); r.status != 204 {
		t.Fatalf("seal: %d %s", r.status, r.raw)
	}
	sealedChecks(t, h, token)
	for _, k := range keysHex[:2] {
		h.must(200, "POST", "sys/unseal", map[string]any{"key": k})
	}
	if got := h.doWith("POST", "transit/decrypt/k", map[string]any{"ciphertext": ct}, map[string]string{"X-Vault-Token": token}); got.status != 200 || got.str("plaintext") != b64("survives") {
		t.Fatalf("decrypt after unseal: %d %s", got.status, got.raw)
	}
}

// sealedChecks: a sealed node answers status and unseal, and 503 for the
// rest, whatever the token.
func sealedChecks(t *testing.T, h *harness, token string) {
	t.Helper()
	withToken := map[string]string{"X-Vault-Token": token}
	for _, c := range []struct{ method, path string }{
		{"POST", "transit/encrypt/k"},
		{"POST", "transit/decrypt/k"},
		{"GET", "transit/keys/k"},
		{"LIST", "transit/keys"},
		{"POST", "transit/random"},
		{"GET", "auth/token/lookup-self"},
		{"POST", "sys/seal"},
	} {
		for _, hdr := range []map[string]string{withToken, {}, {"X-Vault-Token": "kr.nope"}} {
			r := h.doWith(c.method, c.path, map[string]any{"plaintext": b64("x")}, hdr)
			if r.status != 503 || len(r.errs()) != 1 || r.errs()[0] != "keyraft is sealed" {
				t.Fatalf("sealed %s %s: %d %s", c.method, c.path, r.status, r.raw)
			}
		}
	}
	if st := h.must(200, "GET", "sys/seal-status", nil).body; st["sealed"] != true {
		t.Fatalf("seal-status %v", st)
	}
	if r := h.doWith("GET", "sys/health", nil, nil); r.status != 503 || r.body["sealed"] != true {
		t.Fatalf("health: %d %s", r.status, r.raw)
	}
	h.must(200, "GET", "sys/leader", nil)
	h.must(200, "GET", "sys/init", nil)
}

// TestSealedNode: seal while keys are in use; then only status and unseal
// answer; after unseal every ciphertext still decrypts.
func TestSealedNode(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("k", nil)
	ct := h.must(200, "POST", "transit/encrypt/k", map[string]any{"plaintext": b64("before")}).str("ciphertext")
	h.must(204, "POST", "sys/seal", nil)
	sealedChecks(t, h, h.token)
	h.must(200, "POST", "sys/unseal", map[string]any{"key": base64.StdEncoding.EncodeToString(h.unsealKey)})
	if got := h.must(200, "POST", "transit/decrypt/k", map[string]any{"ciphertext": ct}).str("plaintext"); got != b64("before") {
		t.Fatal(got)
	}
}

// TestHealthAndLeader covers the status codes and their overrides, for an
// active node and (through the isLeader seam) a standby.
func TestHealthAndLeader(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r := h.must(200, "GET", "sys/health", nil)
	for field, want := range map[string]any{"initialized": true, "sealed": false, "standby": false, "version": Version, "cluster_name": "keyraft"} {
		if r.body[field] != want {
			t.Fatalf("health %s = %v, want %v", field, r.body[field], want)
		}
	}
	if ts, _ := r.body["server_time_utc"].(float64); time.Since(time.Unix(int64(ts), 0)) > time.Hour {
		t.Fatalf("server_time_utc %v", r.body["server_time_utc"])
	}
	h.must(299, "GET", "sys/health?activecode=299", nil)
	if res, err := h.client.Head(h.srv.URL + "/v1/sys/health"); err != nil || res.StatusCode != 200 {
		t.Fatalf("HEAD health: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	l := h.must(200, "GET", "sys/leader", nil).body
	if l["is_self"] != true || l["ha_enabled"] != true || l["leader_address"] != "http://127.0.0.1:8200" || l["leader_cluster_address"] != h.node.ClusterAddr() {
		t.Fatalf("leader %v", l)
	}

	h.api.isLeader = func() bool { return false }
	defer func() { h.api.isLeader = h.node.IsLeader }()
	for path, want := range map[string]int{
		"sys/health":                               429,
		"sys/health?standbyok=true":                200,
		"sys/health?standbyok":                     200,
		"sys/health?standbyok=false":               429,
		"sys/health?standbycode=200":               200,
		"sys/health?standbyok=true&activecode=204": 204,
	} {
		r := h.do("GET", path, nil)
		if r.status != want {
			t.Errorf("standby %s: %d, want %d", path, r.status, want)
		}
		if want != 204 && r.body["standby"] != true {
			t.Errorf("standby %s: %s", path, r.raw)
		}
	}
	if l := h.must(200, "GET", "sys/leader", nil).body; l["is_self"] != false || l["leader_address"] != "" {
		t.Fatalf("standby leader %v", l)
	}
}

// TestPanicAnswers500: a panic inside a handler becomes a 500 with a
// generic message, is audited, and the server goes on serving.
func TestPanicAnswers500(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	secret := "do-not-echo-" + b64("secret")
	h.engine.Now = func() time.Time { panic("boom: " + secret) }
	r := h.must(500, "POST", "transit/keys/p", map[string]any{})
	if len(r.errs()) != 1 || r.errs()[0] != "internal error" || strings.Contains(string(r.raw), secret) {
		t.Fatalf("panic answer %s", r.raw)
	}
	ev := h.audit.last()
	if ev.Status != 500 || ev.Outcome != "error" || ev.Operation != "transit/keys" || strings.Contains(ev.Error, secret) {
		t.Fatalf("audit event %+v", ev)
	}
	h.engine.Now = time.Now
	h.createKey("p", nil)
	h.must(200, "GET", "sys/health", nil)
}

// TestAuditFailureRefuses: when the event cannot be recorded the request
// fails with 503 and carries no result.
func TestAuditFailureRefuses(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("k", nil)
	h.audit.setFail(true)
	r := h.must(503, "POST", "transit/encrypt/k", map[string]any{"plaintext": b64("x")})
	if len(r.errs()) != 1 || r.errs()[0] != "request could not be recorded in the audit log" || strings.Contains(string(r.raw), "vault:v1") {
		t.Fatalf("answer %s", r.raw)
	}
	h.audit.setFail(false)
	h.must(200, "POST", "transit/encrypt/k", map[string]any{"plaintext": b64("x")})
}

// TestAuditEvents: every request leaves one event with the operation, key,
// version and outcome, and never the request's secrets.
func TestAuditEvents(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("k", nil)
	pt := b64("top secret plaintext")
	ct := h.must(200, "POST", "transit/encrypt/k", map[string]any{"plaintext": pt, "context": b64("ctx")}).str("ciphertext")
	ev := h.audit.last()
	if ev.Operation != "transit/encrypt" || ev.Key != "k" || ev.KeyVersion != 1 || ev.Outcome != "allowed" || ev.Status != 200 || ev.Identity == "" || ev.RequestID == "" {
		t.Fatalf("encrypt event %+v", ev)
	}
	h.must(400, "POST", "transit/decrypt/k", map[string]any{"ciphertext": ct + "x"})
	h.doWith("GET", "transit/keys/k", nil, map[string]string{"X-Vault-Token": "kr.secret-token"})
	if ev := h.audit.last(); ev.Outcome != "denied" || ev.Status != 403 || ev.Identity != "" {
		t.Fatalf("denied event %+v", ev)
	}
	h.doWith("PATCH", "anything", nil, nil)
	h.must(204, "POST", "sys/seal", nil)
	h.must(200, "POST", "sys/unseal", map[string]any{"key": hex.EncodeToString(h.unsealKey)})
	for _, ev := range h.audit.all() {
		s := strings.Join([]string{ev.Error, ev.Path, ev.Key, ev.Identity, ev.Operation}, "|")
		for _, secret := range []string{pt, ct, rootToken + "|", "kr.secret-token", hex.EncodeToString(h.unsealKey), "top secret"} {
			if strings.Contains(s, secret) {
				t.Fatalf("audit event holds a secret: %+v", ev)
			}
		}
	}
	if n := len(h.audit.all()); n != 7 {
		t.Fatalf("%d events for 7 requests", n)
	}
}

func TestRaftConfigurationVaultShape(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cfg, _ := h.must(200, "GET", "sys/storage/raft/configuration", nil).data()["config"].(map[string]any)
	servers, _ := cfg["servers"].([]any)
	if len(servers) != 1 {
		t.Fatalf("servers: %v", cfg)
	}
	s := servers[0].(map[string]any)
	if s["node_id"] != "n1" || s["leader"] != true || s["voter"] != true || s["address"] == "" {
		t.Fatalf("server: %v", s)
	}
	if r := h.doWith("GET", "sys/storage/raft/configuration", nil, nil); r.status != 403 {
		t.Fatalf("without a token: %d", r.status)
	}
}
