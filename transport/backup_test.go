package transport

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestTransitBackupRestore(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.createKey("plain", nil)
	if r := h.do("GET", "transit/backup/plain", nil); r.status != 400 || !strings.Contains(r.errs()[0], "exportable and allow_plaintext_backup") {
		t.Fatalf("backup of a key that forbids it: %d %v", r.status, r.errs())
	}
	h.createKey("app", map[string]any{"exportable": true, "allow_plaintext_backup": true})
	h.must(200, "POST", "transit/keys/app/rotate", nil)
	pt := base64.StdEncoding.EncodeToString([]byte("survives a backup"))
	ct := h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": pt}).str("ciphertext")
	backup := h.must(200, "GET", "transit/backup/app", nil).str("backup")

	h.must(200, "POST", "transit/keys/app/config", map[string]any{"deletion_allowed": true})
	h.must(204, "DELETE", "transit/keys/app", nil)
	h.must(400, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct})
	h.must(204, "POST", "transit/restore", map[string]any{"backup": backup})
	if got := h.must(200, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}).str("plaintext"); got != pt {
		t.Fatalf("decrypt after restore: %q", got)
	}
	if v := h.keyInfo("app")["latest_version"]; v != float64(2) {
		t.Fatalf("restored latest_version %v", v)
	}
	if r := h.do("POST", "transit/restore", map[string]any{"backup": backup}); r.status != 400 || !strings.Contains(r.errs()[0], "already exists") {
		t.Fatalf("restore over an existing key: %d %v", r.status, r.errs())
	}
	// force replaces the key as a delete would: only with deletion_allowed.
	if r := h.do("POST", "transit/restore", map[string]any{"backup": backup, "force": true}); r.status != 400 || !strings.Contains(r.errs()[0], "does not allow deletion") {
		t.Fatalf("forced restore over a key without deletion_allowed: %d %v", r.status, r.errs())
	}
	h.must(200, "POST", "transit/keys/app/config", map[string]any{"deletion_allowed": true})
	h.must(204, "POST", "transit/restore", map[string]any{"backup": backup, "force": true})
	h.must(204, "POST", "transit/restore/copy", map[string]any{"backup": backup})
	if got := h.must(200, "POST", "transit/decrypt/copy", map[string]any{"ciphertext": ct}).str("plaintext"); got != pt {
		t.Fatalf("decrypt with the copy: %q", got)
	}
	for name, body := range map[string]any{
		"not base64": map[string]any{"backup": "!!"},
		"not json":   map[string]any{"backup": base64.StdEncoding.EncodeToString([]byte("nope"))},
		"missing":    map[string]any{},
		"bad name":   map[string]any{"backup": backup, "force": true},
	} {
		path := "transit/restore"
		if name == "bad name" {
			path = "transit/restore/bad%20name"
		}
		if r := h.do("POST", path, body); r.status != 400 {
			t.Errorf("%s: %d %v", name, r.status, r.errs())
		}
	}
	// The backup (key material) never reaches the audit log, only its HMAC.
	raw := string(h.must(200, "GET", "sys/audit/events?limit=1000", nil).raw)
	if strings.Contains(raw, backup[:40]) {
		t.Fatal("the audit log holds the backup")
	}
	if !strings.Contains(raw, `"backup":"hmac-sha256:`) {
		t.Fatal("the restore event lacks the backup's HMAC")
	}
}

func TestTransitRestoreRefusesInconsistentKeys(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", map[string]any{"exportable": true, "allow_plaintext_backup": true})
	h.must(200, "POST", "transit/keys/app/rotate", nil)
	raw, _ := base64.StdEncoding.DecodeString(h.must(200, "GET", "transit/backup/app", nil).str("backup"))
	var b map[string]any
	json.Unmarshal(raw, &b)
	for name, edit := range map[string]func(p map[string]any){
		"key_size on aes":         func(p map[string]any) { p["key_size"] = 32 },
		"huge latest":             func(p map[string]any) { p["latest_version"] = 2147483647 },
		"missing version":         func(p map[string]any) { delete(p["versions"].(map[string]any), "1") },
		"min_decryption > latest": func(p map[string]any) { p["min_decryption_version"] = 9 },
		"1ns rotation":            func(p map[string]any) { p["auto_rotate_period"] = 1 },
	} {
		var c map[string]any
		cj, _ := json.Marshal(b)
		json.Unmarshal(cj, &c)
		edit(c["policy"].(map[string]any))
		bad, _ := json.Marshal(c)
		r := h.do("POST", "transit/restore/"+strings.ReplaceAll(name, " ", "-")[:6], map[string]any{"backup": base64.StdEncoding.EncodeToString(bad)})
		if r.status != 400 || !strings.Contains(r.errs()[0], "invalid backup") {
			t.Errorf("%s: %d %v", name, r.status, r.errs())
		}
	}
}
