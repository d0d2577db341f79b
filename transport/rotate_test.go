package transport

import (
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/internal/testwait"
)

// sys/rotate adds a barrier keyring term (root only), sys/key-status
// reports it in Vault's shape, and sys/rotate/progress follows the
// re-encryption to the end; transit data from before stays usable.
func TestSysRotate(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.createKey("app", nil)
	ct := h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("before")}).str("ciphertext")

	ks := h.must(200, "GET", "sys/key-status", nil).data()
	installed, err := time.Parse(time.RFC3339Nano, ks["install_time"].(string))
	if num(ks, "term") != 1 || err != nil || time.Since(installed) > time.Minute {
		t.Fatalf("key-status before rotation: %v (%v)", ks, err)
	}
	if p := h.must(200, "GET", "sys/rotate/progress", nil).data(); num(p, "term") != 1 || p["running"] != false {
		t.Fatalf("progress before any rotation: %v", p)
	}

	const other = "kr.not-root"
	putToken(t, h, other, &access.TokenEntry{Accessor: "acc-other", Policies: []string{"default"}})
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"POST", "sys/rotate", "", 403},
		{"POST", "sys/rotate", other, 403},
		{"GET", "sys/key-status", other, 403},
		{"GET", "sys/rotate/progress", other, 403},
		{"GET", "sys/rotate", rootToken, 405},
		{"POST", "sys/key-status", rootToken, 405},
		{"DELETE", "sys/rotate/progress", rootToken, 405},
	} {
		if r := h.doWith(c.method, c.path, nil, map[string]string{"X-Vault-Token": c.token}); r.status != c.want {
			t.Errorf("%s %s with token %q: %d %s, want %d", c.method, c.path, c.token, r.status, r.raw, c.want)
		}
	}
	if ks := h.must(200, "GET", "sys/key-status", nil).data(); num(ks, "term") != 1 {
		t.Fatalf("a refused rotation rotated: %v", ks)
	}

	if d := h.must(200, "PUT", "sys/rotate", nil).data(); num(d, "term") != 2 {
		t.Fatalf("rotate answered %v", d)
	}
	if ks := h.must(200, "GET", "sys/key-status", nil).data(); num(ks, "term") != 2 {
		t.Fatalf("key-status after rotation: %v", ks)
	}
	var p map[string]any
	testwait.Within(t, 20*time.Second, "the re-encryption to finish", func() bool {
		p = h.must(200, "GET", "sys/rotate/progress", nil).data()
		return num(p, "term") == 2 && p["running"] == false
	})

	if num(p, "done") != num(p, "total") || num(p, "total") < 3 || p["error"] != "" || p["started_at"] == nil || p["finished_at"] == nil {
		t.Fatalf("progress after the job: %v", p)
	}
	if got := h.must(200, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}).str("plaintext"); got != b64("before") {
		t.Fatalf("decrypt after the rotation: %q", got)
	}

	// The rotation is a state change with its own audit event, and the
	// end of the job has one too.
	var rotated, rewrapped bool
	if err := h.node.AuditEvents(1, func(e *audit.Event) error {
		switch e.Operation {
		case "sys/rotate":
			if e.Path == "/v1/sys/rotate" && e.StateChange && e.Details["term"] == "2" && e.Status == 200 {
				rotated = true
			}
		case "sys/rotate/rewrap":
			rewrapped = e.Details["term"] == "2"
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !rotated || !rewrapped {
		t.Fatalf("audit: rotation event %v, re-encryption event %v", rotated, rewrapped)
	}

	h.must(204, "PUT", "sys/seal", nil)
	for _, path := range []string{"sys/rotate", "sys/key-status"} {
		method := "GET"
		if path == "sys/rotate" {
			method = "POST"
		}
		if r := h.do(method, path, nil); r.status != 503 {
			t.Fatalf("%s while sealed: %d %s", path, r.status, r.raw)
		}
	}
}
