package transport

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
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

// TestTransitBackupForVault: GET transit/backup/:name?format=vault|openbao
// is a Vault transit backup of the key under the name its caller knows
// (a namespace's prefix is not part of it), the audit event says which
// format left and holds no material, and the mistakes are 400s with the
// reason.
func TestTransitBackupForVault(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", map[string]any{"type": "hmac", "key_size": 32, "exportable": true, "allow_plaintext_backup": true})
	types := map[string]float64{"vault": 11, "openbao": 10} // their hmac numbers
	for format, typ := range types {
		backup := h.must(200, "GET", "transit/backup/app?format="+format, nil).str("backup")
		var doc struct {
			Policy map[string]any `json:"policy"`
		}
		raw, _ := base64.StdEncoding.DecodeString(backup)
		if err := json.Unmarshal(raw, &doc); err != nil || doc.Policy["name"] != "app" || doc.Policy["type"] != typ || doc.Policy["key_size"] != float64(32) {
			t.Fatalf("format %s: %v %v", format, err, doc.Policy)
		}
		if ev := h.audit.last(); ev.Details["format"] != format || strings.Contains(fmt.Sprint(ev), backup[:40]) {
			t.Fatalf("format %s: audit event %+v", format, ev)
		}
		// keyraft takes its Vault backups back.
		h.must(204, "POST", "transit/restore/app-"+format, map[string]any{"backup": backup})
	}

	h.must(200, "PUT", "sys/namespaces/prod", nil)
	if r := h.inNS("prod", h.token, "POST", "transit/keys/pay", map[string]any{"exportable": true, "allow_plaintext_backup": true}); r.status != 200 {
		t.Fatalf("create in a namespace: %d %s", r.status, r.raw)
	}
	r := h.inNS("prod", h.token, "GET", "transit/backup/pay?format=openbao", nil)
	raw, _ := base64.StdEncoding.DecodeString(r.str("backup"))
	if r.status != 200 || !strings.Contains(string(raw), `"name":"pay"`) || strings.Contains(string(raw), "ns.prod") {
		t.Fatalf("a namespace's key for OpenBao: %d, named as %s", r.status, raw[:min(len(raw), 40)])
	}

	h.createKey("x", map[string]any{"type": "xchacha20-poly1305", "exportable": true, "allow_plaintext_backup": true})
	h.createKey("plain", nil)
	for path, want := range map[string]string{
		"transit/backup/x?format=vault":       "HashiCorp Vault has no xchacha20-poly1305 keys",
		"transit/backup/app?format=pkcs12":    `invalid format "pkcs12"`,
		"transit/backup/plain?format=openbao": "exportable and allow_plaintext_backup",
	} {
		if r := h.do("GET", path, nil); r.status != 400 || !strings.Contains(r.errs()[0], want) {
			t.Errorf("GET %s: %d %v, want a 400 saying %q", path, r.status, r.errs(), want)
		}
	}
	if r := h.do("GET", "transit/backup/x?format=openbao", nil); r.status != 200 {
		t.Fatalf("xchacha20 for OpenBao: %d %v", r.status, r.errs())
	}
}
