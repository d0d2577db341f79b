package transit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/openbao"
	"github.com/keyraft/keyraft/keys"
)

// made is what one key version made before its key was backed up.
type made struct {
	version         int
	ciphertext, sig string
	mac             string
}

const vaultExportPlaintext = "moved to Vault"

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// makeExportKey creates the key of c in e as name, and before each
// rotation encrypts, signs and MACs with the newest version.
func makeExportKey(t *testing.T, e *Engine, name string, c openbao.KeyCase) []made {
	t.Helper()
	ctx := context.Background()
	must := func(r *Response, err error) *Response {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}
	body := fmt.Sprintf(`{"type":%q,"exportable":true,"allow_plaintext_backup":true,"derived":%v}`, c.Type, c.Derived)
	must(e.CreateKey(ctx, name, fields(t, body)))
	tp := keys.Type(c.Type)
	var out []made
	for v := 1; v <= c.Versions; v++ {
		if v > 1 {
			must(e.RotateKey(ctx, name))
		}
		m := made{version: v}
		in := fmt.Sprintf(`{"input":%q,"plaintext":%q,"context":%q}`, b64s("data"), b64s(vaultExportPlaintext), b64s("ctx"))
		if tp.SupportsEncryption() {
			m.ciphertext = must(e.Encrypt(ctx, name, fields(t, in))).Data["ciphertext"].(string)
		}
		if tp.SupportsSigning() {
			m.sig = must(e.Sign(ctx, name, fields(t, in))).Data["signature"].(string)
		}
		m.mac = must(e.HMAC(ctx, name, fields(t, in))).Data["hmac"].(string)
		out = append(out, m)
	}
	if c.MinDec > 1 {
		must(e.ConfigKey(ctx, name, fields(t, fmt.Sprintf(`{"min_decryption_version":%d}`, c.MinDec))))
	}
	if c.Trim > 0 { // a trim needs min_encryption_version set (as in Vault)
		must(e.ConfigKey(ctx, name, fields(t, fmt.Sprintf(`{"min_encryption_version":%d}`, c.Trim))))
		must(e.TrimKey(ctx, name, fields(t, fmt.Sprintf(`{"min_available_version":%d}`, c.Trim))))
	}
	return out
}

// checkMade checks that key name of engine e opens, verifies and MACs
// what the versions from first on made.
func checkMade(t *testing.T, e *Engine, name string, ms []made, first int) {
	t.Helper()
	ctx := context.Background()
	for _, m := range ms {
		if m.version < first {
			continue
		}
		if m.ciphertext != "" {
			r, err := e.Decrypt(ctx, name, fields(t, fmt.Sprintf(`{"ciphertext":%q,"context":%q}`, m.ciphertext, b64s("ctx"))))
			if err != nil || r.Data["plaintext"] != b64s(vaultExportPlaintext) {
				t.Errorf("%s v%d: decrypt after the round trip: %v", name, m.version, err)
			}
		}
		if m.sig != "" {
			r, err := e.Verify(ctx, name, fields(t, fmt.Sprintf(`{"input":%q,"signature":%q,"context":%q}`, b64s("data"), m.sig, b64s("ctx"))))
			if err != nil || r.Data["valid"] != true {
				t.Errorf("%s v%d: verify after the round trip: %v %v", name, m.version, r, err)
			}
		}
		r, err := e.HMAC(ctx, name, fields(t, fmt.Sprintf(`{"input":%q,"key_version":%d}`, b64s("data"), m.version)))
		if err != nil || r.Data["hmac"] != m.mac {
			t.Errorf("%s v%d: hmac after the round trip differs: %v", name, m.version, err)
		}
	}
}

// TestVaultBackupRoundTrip: a key backed up in Vault's and OpenBao's
// format decodes (as a restore of that backup does) to the same key —
// material, HMAC keys, creation times and settings — and what it made
// before still opens, verifies and MACs the same after the restore.
func TestVaultBackupRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, c := range openbao.KeyCases {
		t.Run(c.Name(), func(t *testing.T) {
			t.Parallel()
			src := New(newMemStore(), nil)
			ms := makeExportKey(t, src, "k", c)
			orig := src.cached("k").policy
			for _, format := range []string{BackupFormatVault, BackupFormatOpenBao} {
				r, err := src.BackupAs("k", format, "moved")
				if c.Type == "xchacha20-poly1305" && format == BackupFormatVault {
					if err == nil || !strings.Contains(err.Error(), "HashiCorp Vault has no xchacha20-poly1305") {
						t.Fatalf("xchacha20 for Vault: %v", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s backup: %v", format, err)
				}
				raw, err := base64.StdEncoding.DecodeString(r.Data["backup"].(string))
				if err != nil {
					t.Fatal(err)
				}
				checkVaultShape(t, raw, c)
				p, err := decodeVaultBackup(raw, time.Now())
				if err != nil {
					t.Fatalf("%s: keyraft does not restore its own Vault backup: %v", format, err)
				}
				samePolicy(t, orig, p)
				dst := New(newMemStore(), nil)
				if _, err := dst.Restore(ctx, "", fields(t, fmt.Sprintf(`{"backup":%q}`, r.Data["backup"]))); err != nil {
					t.Fatalf("%s restore: %v", format, err)
				}
				checkMade(t, dst, "moved", ms, c.FirstOpen())
				if c.MinDec > 1 && c.Trim == 0 { // the older versions came along
					if _, err := dst.ConfigKey(ctx, "moved", fields(t, `{"min_decryption_version":1}`)); err != nil {
						t.Fatal(err)
					}
					checkMade(t, dst, "moved", ms, 1)
				}
			}
		})
	}
}

// samePolicy fails unless the decoded key p is orig for every use.
func samePolicy(t *testing.T, orig, p *Policy) {
	t.Helper()
	if p.Type != orig.Type || p.Derived != orig.Derived || p.LatestVersion != orig.LatestVersion ||
		p.MinDecryptionVersion != orig.MinDecryptionVersion || p.MinEncryptionVersion != orig.MinEncryptionVersion ||
		p.MinAvailableVersion != orig.MinAvailableVersion || p.Exportable != orig.Exportable ||
		p.AllowPlaintextBackup != orig.AllowPlaintextBackup || p.KeySize != orig.KeySize || len(p.Versions) != len(orig.Versions) {
		t.Fatalf("settings differ:\n got  %+v\n want %+v", p, orig)
	}
	for n, v := range orig.Versions {
		w := p.Versions[n]
		hk := v.HMACKey
		if orig.Type == keys.HMAC {
			hk = v.Secret // an hmac key MACs with its key, in Vault as here
			w = &keys.Version{Version: w.Version, CreationTime: w.CreationTime, Secret: w.Secret, HMACKey: w.Secret}
		}
		if w == nil || !bytes.Equal(w.Secret, v.Secret) || !bytes.Equal(w.HMACKey, hk) || !w.CreationTime.Equal(v.CreationTime) {
			t.Fatalf("version %d differs after the round trip", n)
		}
	}
}

// checkVaultShape checks what Vault requires of a backup beyond what
// keyraft's decoder reads (docs: min_decryption_version ≥ 1, every
// version from it to the latest in the policy, the archive layout).
func checkVaultShape(t *testing.T, raw []byte, c openbao.KeyCase) {
	t.Helper()
	var doc struct {
		Policy       map[string]json.RawMessage `json:"policy"`
		ArchivedKeys struct {
			Keys []map[string]json.RawMessage `json:"keys"`
		} `json:"archived_keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var pol struct {
		Type, MinDec, Latest, MinAvail int
		Keys                           map[string]json.RawMessage
	}
	json.Unmarshal(doc.Policy["type"], &pol.Type)
	json.Unmarshal(doc.Policy["min_decryption_version"], &pol.MinDec)
	json.Unmarshal(doc.Policy["latest_version"], &pol.Latest)
	json.Unmarshal(doc.Policy["min_available_version"], &pol.MinAvail)
	json.Unmarshal(doc.Policy["keys"], &pol.Keys)
	if pol.MinDec < 1 || pol.Latest != c.Versions || len(pol.Keys) != pol.Latest-pol.MinDec+1 {
		t.Fatalf("policy versions: min_decryption %d, latest %d, %d in keys", pol.MinDec, pol.Latest, len(pol.Keys))
	}
	if len(doc.ArchivedKeys.Keys) != pol.Latest-pol.MinAvail+1 {
		t.Fatalf("archive of %d entries for versions %d..%d", len(doc.ArchivedKeys.Keys), pol.MinAvail, pol.Latest)
	}
	for _, f := range []string{"Imported", "AllowImportedKeyRotation", "auto_rotate_period", "allow_plaintext_backup", "exportable"} {
		if doc.Policy[f] == nil {
			t.Fatalf("policy lacks %s", f)
		}
	}
	if doc.Policy["type"][0] == '"' {
		t.Fatal("type must be Vault's integer")
	}
}

// TestVaultBackupRefusals: keys Vault cannot represent are refused with
// a 400 that says why, and never with material in it.
func TestVaultBackupRefusals(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	create := func(name, body string) {
		t.Helper()
		if _, err := e.CreateKey(ctx, name, fields(t, body)); err != nil {
			t.Fatal(err)
		}
	}
	create("plain", `{}`)
	create("conv", `{"derived":true,"convergent_encryption":true,"exportable":true,"allow_plaintext_backup":true}`)
	create("ded", `{"type":"ed25519","derived":true,"exportable":true,"allow_plaintext_backup":true}`)
	create("short", `{"type":"hmac","key_size":16,"exportable":true,"allow_plaintext_backup":true}`)
	create("off", `{"exportable":true,"allow_plaintext_backup":true}`)
	if _, err := e.ChangeState(ctx, "off", "disable", fields(t, `{}`)); err != nil {
		t.Fatal(err)
	}
	create("gone", `{"exportable":true,"allow_plaintext_backup":true}`)
	if _, err := e.ChangeState(ctx, "gone", "compromise", fields(t, `{}`)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, format, want string }{
		{"plain", BackupFormatVault, "needs both exportable and allow_plaintext_backup"},
		{"conv", BackupFormatOpenBao, "convergent nonces differently"},
		{"ded", BackupFormatVault, "derived ed25519"},
		{"short", BackupFormatOpenBao, "hmac keys of 16 bytes"},
		{"off", BackupFormatVault, "no lifecycle states"},
		{"gone", BackupFormatVault, "compromised"},
		{"nokey", BackupFormatVault, "not found"},
		{"plain", "pkcs12", `invalid format "pkcs12"`},
	} {
		_, err := e.BackupAs(tc.name, tc.format, tc.name)
		if err == nil || !IsUserError(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s for %s: %v, want a 4xx saying %q", tc.name, tc.format, err, tc.want)
		}
	}
	// The default and "keyraft" are keyraft's own format, which keeps the
	// lifecycle (so a disabled key's backup is one).
	for _, f := range []string{"", BackupFormatKeyraft} {
		r, err := e.BackupAs("off", f, "off")
		if err != nil {
			t.Fatalf("format %q: %v", f, err)
		}
		raw, _ := base64.StdEncoding.DecodeString(r.Data["backup"].(string))
		if !bytes.Contains(raw, []byte(`"keyraft_transit_backup":1`)) {
			t.Fatalf("format %q is not keyraft's backup", f)
		}
	}
}
