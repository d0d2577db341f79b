package transport

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/keyraft/keyraft/internal/openbao"
)

// madeOnKeyraft is what one version made before the key moved.
type madeOnKeyraft struct {
	version                    int
	ciphertext, signature, mac string
}

var (
	baoPlaintext = base64.StdEncoding.EncodeToString([]byte("made on keyraft"))
	baoInput     = base64.StdEncoding.EncodeToString([]byte("signed on keyraft"))
	baoContext   = base64.StdEncoding.EncodeToString([]byte("tenant-7"))
)

// TestVaultBackupRestoresOnOpenBao: keys of every type keyraft can back
// up for Vault, made and used on keyraft, are restored on a real OpenBao
// (bao server -dev) with the unmodified vault/api client. There, what
// keyraft encrypted decrypts, what it signed verifies and its HMACs come
// out the same, version by version; versions below min_decryption_version
// came along and open once it is lowered; and the key works on: OpenBao
// rotates it, and what OpenBao then encrypts keyraft decrypts. Skipped
// without a bao binary.
func TestVaultBackupRestoresOnOpenBao(t *testing.T) {
	bao := openbao.Start(t)
	h := newHarness(t, harnessOpts{})
	for i, k := range openbao.KeyCases {
		name := fmt.Sprintf("k%d-%s", i, k.Name())
		t.Run(name, func(t *testing.T) {
			h := h.with(t)
			made := h.makeForBao(name, k)
			backup := h.must(200, "GET", "transit/backup/"+name+"?format=openbao", nil).str("backup")
			if _, err := bao.Client.Logical().Write("transit/restore/"+name, map[string]any{"backup": backup}); err != nil {
				t.Fatalf("OpenBao refuses keyraft's backup: %v", err)
			}
			first := k.FirstOpen()
			checkOnBao(t, bao.Client, name, made, first)
			if first > 1 && k.Trim == 0 {
				if _, err := bao.Client.Logical().Write("transit/keys/"+name+"/config", map[string]any{"min_decryption_version": 1}); err != nil {
					t.Fatal(err)
				}
				checkOnBao(t, bao.Client, name, made, 1)
			}
			// OpenBao takes the key on: it rotates it, and keyraft opens
			// what OpenBao encrypts with the restored versions.
			if _, err := bao.Client.Logical().Write("transit/keys/"+name+"/rotate", nil); err != nil {
				t.Fatalf("OpenBao cannot rotate the restored key: %v", err)
			}
			if k.Type == "aes256-gcm96" || k.Type == "chacha20-poly1305" || k.Type == "xchacha20-poly1305" {
				s, err := bao.Client.Logical().Write("transit/encrypt/"+name, map[string]any{"plaintext": baoPlaintext, "context": baoContext, "key_version": k.Versions})
				if err != nil {
					t.Fatal(err)
				}
				ct := s.Data["ciphertext"].(string)
				if got := h.must(200, "POST", "transit/decrypt/"+name, map[string]any{"ciphertext": ct, "context": baoContext}).str("plaintext"); got != baoPlaintext {
					t.Fatalf("keyraft does not open OpenBao's ciphertext of the restored key: %q", got)
				}
			}
		})
	}
}

// makeForBao creates key k on keyraft as name and, before each rotation,
// encrypts, signs and MACs with the newest version.
func (h *harness) makeForBao(name string, k openbao.KeyCase) []madeOnKeyraft {
	h.createKey(name, map[string]any{"type": k.Type, "exportable": true, "allow_plaintext_backup": true, "derived": k.Derived})
	info := h.keyInfo(name)
	var out []madeOnKeyraft
	for v := 1; v <= k.Versions; v++ {
		if v > 1 {
			h.must(200, "POST", "transit/keys/"+name+"/rotate", nil)
		}
		m := madeOnKeyraft{version: v}
		body := map[string]any{"plaintext": baoPlaintext, "input": baoInput, "context": baoContext}
		if info["supports_encryption"] == true {
			m.ciphertext = h.must(200, "POST", "transit/encrypt/"+name, body).str("ciphertext")
		}
		if info["supports_signing"] == true {
			m.signature = h.must(200, "POST", "transit/sign/"+name, body).str("signature")
		}
		m.mac = h.must(200, "POST", "transit/hmac/"+name, body).str("hmac")
		out = append(out, m)
	}
	if k.MinDec > 1 {
		h.must(200, "POST", "transit/keys/"+name+"/config", map[string]any{"min_decryption_version": k.MinDec})
	}
	if k.Trim > 0 { // a trim needs min_encryption_version set (as in Vault)
		h.must(200, "POST", "transit/keys/"+name+"/config", map[string]any{"min_encryption_version": k.Trim})
		h.must(200, "POST", "transit/keys/"+name+"/trim", map[string]any{"min_available_version": k.Trim})
	}
	return out
}

// checkOnBao checks on OpenBao what the versions from first on made on
// keyraft, and that older versions are refused.
func checkOnBao(t *testing.T, c *vault.Client, name string, made []madeOnKeyraft, first int) {
	t.Helper()
	for _, m := range made {
		if m.ciphertext != "" {
			s, err := c.Logical().Write("transit/decrypt/"+name, map[string]any{"ciphertext": m.ciphertext, "context": baoContext})
			switch {
			case m.version < first && (err == nil || !strings.Contains(err.Error(), "too old")):
				t.Errorf("v%d below min_decryption_version %d: decrypt on OpenBao gave %v", m.version, first, err)
			case m.version >= first && (err != nil || s.Data["plaintext"] != baoPlaintext):
				t.Errorf("v%d: OpenBao does not decrypt keyraft's ciphertext: %v", m.version, err)
			}
		}
		if m.version < first {
			continue
		}
		if m.signature != "" {
			s, err := c.Logical().Write("transit/verify/"+name, map[string]any{"input": baoInput, "signature": m.signature, "context": baoContext})
			if err != nil || s.Data["valid"] != true {
				t.Errorf("v%d: OpenBao does not verify keyraft's signature: %v %v", m.version, s, err)
			}
		}
		s, err := c.Logical().Write("transit/hmac/"+name, map[string]any{"input": baoInput, "key_version": m.version})
		if err != nil || s.Data["hmac"] != m.mac {
			t.Errorf("v%d: OpenBao's HMAC differs from keyraft's: %v", m.version, err)
		}
	}
}
