package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/transit"
)

// The lifecycle actions over HTTP: Vault's envelope, 4xx with a reason for
// a refused use, and a compromised key flagged in the answer (field and
// warning) and in the request's committed audit event.
func TestLifecycleAPI(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.createKey("k", map[string]any{"exportable": true})
	ct := h.must(200, "POST", "transit/encrypt/k", map[string]any{"plaintext": "aGk="}).str("ciphertext")

	h.must(200, "POST", "transit/keys/k/disable", nil)
	r := h.must(400, "POST", "transit/encrypt/k", map[string]any{"plaintext": "aGk="})
	if e := r.errs(); len(e) != 1 || !strings.Contains(e[0], `key "k" is disabled: encrypt is not allowed`) {
		t.Fatalf("encrypt with a disabled key: %v", e)
	}
	h.must(200, "POST", "transit/keys/k/enable", nil)
	h.must(200, "POST", "transit/keys/k/compromise", map[string]any{"reason": "leaked"})

	for _, body := range []map[string]any{
		{"ciphertext": ct},
		{"batch_input": []map[string]any{{"ciphertext": ct}}},
	} {
		r = h.must(200, "POST", "transit/decrypt/k", body)
		if r.data()["key_compromised"] != true || len(r.warnings()) == 0 || !strings.Contains(strings.Join(r.warnings(), " "), "compromised") {
			t.Fatalf("decrypt with a compromised key not flagged: %s", r.raw)
		}
	}
	if d := h.keyInfo("k"); d["state"] != "compromised" || d["key_compromised"] != true {
		t.Fatalf("key read: state %v key_compromised %v", d["state"], d["key_compromised"])
	}
	flagged := map[string]bool{}
	h.node.AuditEvents(0, func(e *audit.Event) error {
		if e.Details["key_compromised"] == "true" {
			flagged[e.Method+" "+e.Operation] = true
		}
		return nil
	})
	if !flagged["POST transit/decrypt"] || !flagged["GET transit/keys"] {
		t.Fatalf("events flagged key_compromised: %v; want the decrypts and the key read", flagged)
	}

	// Bad input: unknown action, wrong method, bad window.
	h.must(404, "POST", "transit/keys/k/explode", nil)
	h.must(405, "GET", "transit/keys/k/disable", nil)
	r = h.must(400, "POST", "transit/keys/k/destroy", map[string]any{"pending_window": "soon"})
	if e := r.errs(); len(e) != 1 || !strings.Contains(e[0], "pending_window") {
		t.Fatalf("bad window: %v", e)
	}
	h.must(404, "POST", "transit/keys/nope/disable", nil)
}

// auto_rotate_period is honoured through Raft: the rotation a (leader's)
// engine makes is a committed change, seen by the serving engine, with
// its own audit event and a history entry.
func TestAutoRotateThroughRaft(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.createKey("hourly", map[string]any{"auto_rotate_period": "1h"})
	later := transit.New(h.node, nil)
	later.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := later.RotateDue(ctx); err != nil || n != 1 {
		t.Fatalf("RotateDue: %d %v", n, err)
	}
	d := h.keyInfo("hourly")
	if num(d, "latest_version") != 2 {
		t.Fatalf("latest_version %v after an auto-rotation", d["latest_version"])
	}
	hist, _ := d["history"].([]any)
	last, _ := hist[len(hist)-1].(map[string]any)
	if last["event"] != "rotate" || last["detail"] != "auto_rotate_period" {
		t.Fatalf("history ends with %v", last)
	}
	var committed bool
	h.node.AuditEvents(0, func(e *audit.Event) error {
		committed = committed || (e.Operation == "transit/auto-rotate" && e.Key == "hourly" && e.StateChange)
		return nil
	})
	if !committed {
		t.Fatal("no committed transit/auto-rotate event")
	}
}

// A key on a crypto backend (the soft plugin, a real process) is
// destroyed too: the committed record keeps no backend material, and
// every use is refused.
func TestDestroyKeyOnBackend(t *testing.T) {
	h := newHarness(t, harnessOpts{plugins: true})
	if r := h.do("POST", "transit/keys/app", map[string]any{}); r.status != 200 || r.data()["backend"] != "soft" {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	ct := h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("hello")}).str("ciphertext")
	h.must(200, "POST", "transit/keys/app/config", map[string]any{"deletion_allowed": true})
	if before, _, _ := h.node.Read("transit/key/app"); !strings.Contains(string(before), `"material":"`) {
		t.Fatalf("the soft backend's record holds no material before destruction: the test shows nothing")
	}
	h.must(200, "POST", "transit/keys/app/destroy", map[string]any{"pending_window": "1h"})
	later := transit.New(h.node, nil)
	later.Backends = h.engine.Backends
	later.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := later.LifecycleDue(ctx); err != nil || n != 1 {
		t.Fatalf("LifecycleDue: %d %v", n, err)
	}
	raw, _, err := h.node.Read("transit/key/app")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		BackendKeys map[string]struct {
			Material []byte `json:"material"`
		} `json:"backend_keys"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.BackendKeys) == 0 {
		t.Fatalf("record has no backend keys: the test shows nothing: %s", raw)
	}
	for v, k := range rec.BackendKeys {
		if len(k.Material) != 0 {
			t.Fatalf("version %s keeps backend material after destruction", v)
		}
	}
	r := h.must(400, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct})
	if e := r.errs(); len(e) != 1 || !strings.Contains(e[0], `key "app" is destroyed`) {
		t.Fatalf("decrypt with a destroyed backend key: %v", e)
	}
}

// GET sys/report/hygiene: the keys' findings and those of added checks,
// most severe first, with counts; refused without a token.
func TestHygieneReportAPI(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("open", nil)
	h.must(200, "POST", "transit/keys/open/config", map[string]any{"deletion_allowed": true})
	api, err := NewAPI(Config{Node: h.node, Transit: h.engine, Audit: h.audit, APIAddr: "http://127.0.0.1:8200",
		HygieneChecks: []HygieneCheck{func(context.Context) ([]transit.Finding, error) {
			return []transit.Finding{{Severity: transit.SeverityCritical, Check: "token-no-ttl", Object: "token:abc", Message: "m", Fix: "f"}}, nil
		}}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(token string) (int, map[string]any) {
		req := httptest.NewRequest("GET", "/v1/sys/report/hygiene", nil)
		if token != "" {
			req.Header.Set("X-Vault-Token", token)
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		var body map[string]any
		json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	if code, _ := get(""); code != 403 {
		t.Fatalf("without a token: %d", code)
	}
	code, body := get(h.token)
	data, _ := body["data"].(map[string]any)
	findings, _ := data["findings"].([]any)
	if code != 200 || len(findings) != 2 {
		t.Fatalf("report: %d %v", code, body)
	}
	first, _ := findings[0].(map[string]any)
	second, _ := findings[1].(map[string]any)
	if first["object"] != "token:abc" || second["object"] != "key:open" || second["check"] != "key-deletion-allowed" {
		t.Fatalf("findings %v", findings)
	}
	if counts, _ := data["counts"].(map[string]any); counts["critical"] != 1.0 || counts["warning"] != 1.0 {
		t.Fatalf("counts %v", data["counts"])
	}
}

// A finding about a namespace's key names it as its users do.
func TestHygieneFindingOfANamespacedKey(t *testing.T) {
	f := transit.Finding{Object: "key:ns.dev.app", Message: `key "ns.dev.app" has no deletion protection`,
		Fix: "keyraft keys config -deletion-allowed=false ns.dev.app"}
	namespaced(&f)
	want := transit.Finding{Object: "key:app", Namespace: "dev", Message: `key "app" (namespace dev) has no deletion protection`,
		Fix: "keyraft keys config -deletion-allowed=false -namespace=dev app"}
	if f != want {
		t.Fatalf("got %+v\nwant %+v", f, want)
	}
	root := transit.Finding{Object: "key:app", Message: `key "app"`, Fix: "x app"}
	if namespaced(&root); root.Object != "key:app" || root.Namespace != "" {
		t.Fatalf("a root-namespace finding changed: %+v", root)
	}
}

// In process, through the engine on a real node: a destroyed key's record
// ciphertext (read from a snapshot of the state, as stored) is in no file
// of the node's data dir once the node has purged.
func TestDestroyPurgesTheNodesDisk(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("doomed", map[string]any{"exportable": true})
	h.must(200, "POST", "transit/keys/doomed/rotate", nil)
	h.must(200, "POST", "transit/keys/doomed/config", map[string]any{"deletion_allowed": true})
	var snap bytes.Buffer
	if err := h.node.SaveSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	var record []byte
	if _, err := fsm.ParseSnapshotRecords(&snap, func(k, v []byte) {
		if string(k) == "transit/key/doomed" {
			record = bytes.Clone(v[8:])
		}
	}); err != nil || len(record) < 128 {
		t.Fatalf("record not in the snapshot: %v", err)
	}
	needles := [][]byte{record[:64], record[len(record)-64:]}
	dir := h.node.Config().DataDir
	if len(filesWith(t, dir, needles)) == 0 {
		t.Fatal("the record's ciphertext is in no file before destruction: the test shows nothing")
	}
	h.must(200, "POST", "transit/keys/doomed/destroy", map[string]any{"pending_window": "1h"})
	later := transit.New(h.node, nil)
	later.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := later.LifecycleDue(ctx); err != nil || n != 1 {
		t.Fatalf("LifecycleDue: %d %v", n, err)
	}
	_, applied := h.node.RaftIndexes()
	testwait.Within(t, 20*time.Second, "the node's purge", func() bool { return h.node.PurgedIndex() >= applied })
	if hits := filesWith(t, dir, needles); len(hits) > 0 {
		t.Fatalf("the destroyed key's record ciphertext is still in %v", hits)
	}
	if d := h.keyInfo("doomed"); d["state"] != "destroyed" {
		t.Fatalf("state %v", d["state"])
	}
}

func filesWith(t *testing.T, dir string, needles [][]byte) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				hits = append(hits, p)
				break
			}
		}
		return nil
	})
	return hits
}
