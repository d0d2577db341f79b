package transport

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64: %q", s)
	}
	return b
}

// sigBody returns the decoded body of a "vault:v<N>:..." string.
func sigBody(t testing.TB, s string) []byte {
	t.Helper()
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" {
		t.Fatalf("not a vault string: %q", s)
	}
	if b, err := base64.StdEncoding.DecodeString(parts[2]); err == nil {
		return b
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("body of %q is not base64", s)
	}
	return b
}

var allTypes = []struct {
	name                        string
	encrypt, sign, derive, asym bool
}{
	{"aes128-gcm96", true, false, true, false},
	{"aes256-gcm96", true, false, true, false},
	{"chacha20-poly1305", true, false, true, false},
	{"xchacha20-poly1305", true, false, true, false},
	{"ed25519", false, true, true, true},
	{"ecdsa-p256", false, true, false, true},
	{"ecdsa-p384", false, true, false, true},
	{"ecdsa-p521", false, true, false, true},
	{"rsa-2048", true, true, false, true},
	{"rsa-3072", true, true, false, true},
	{"rsa-4096", true, true, false, true},
	{"hmac", false, false, false, false},
}

// TestKeyTypes creates a key of every type, reads it back, and uses it for
// every operation its type supports.
func TestKeyTypes(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, kt := range allTypes {
		t.Run(kt.name, func(t *testing.T) {
			t.Parallel()
			h := h.with(t)
			name := "k-" + kt.name
			start := time.Now().Add(-2 * time.Second)
			created := h.createKey(name, map[string]any{"type": kt.name}).data()
			info := h.keyInfo(name)
			if created["name"] != name || info["name"] != name || info["type"] != kt.name {
				t.Fatalf("create answered %v; read %v", created, info)
			}
			for field, want := range map[string]any{
				"latest_version": 1.0, "min_decryption_version": 1.0, "min_encryption_version": 0.0,
				"min_available_version": 0.0, "deletion_allowed": false, "derived": false,
				"exportable": false, "allow_plaintext_backup": false, "auto_rotate_period": 0.0,
				"imported_key":        false,
				"supports_encryption": kt.encrypt, "supports_decryption": kt.encrypt,
				"supports_signing": kt.sign, "supports_derivation": kt.derive,
			} {
				if info[field] != want {
					t.Errorf("%s = %v, want %v", field, info[field], want)
				}
			}
			if kt.name == "hmac" && info["key_size"] != 32.0 {
				t.Errorf("key_size %v", info["key_size"])
			}
			versions, _ := info["keys"].(map[string]any)
			if len(versions) != 1 {
				t.Fatalf("keys %v", info["keys"])
			}
			if !kt.asym {
				ts, ok := versions["1"].(float64)
				if !ok || time.Unix(int64(ts), 0).Before(start) {
					t.Fatalf("keys[1] = %v, want a recent unix time", versions["1"])
				}
			} else {
				v1, _ := versions["1"].(map[string]any)
				ct, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(v1["creation_time"]))
				if ct.Before(start) || v1["public_key"] == nil || v1["name"] == nil {
					t.Fatalf("keys[1] = %v", versions["1"])
				}
				pub := parsePublic(t, kt.name, v1["public_key"].(string))
				wantName := map[string]string{"ecdsa-p256": "P-256", "ecdsa-p384": "P-384", "ecdsa-p521": "P-521"}[kt.name]
				if wantName == "" {
					wantName = kt.name
				}
				if v1["name"] != wantName {
					t.Errorf("keys[1].name = %v, want %s", v1["name"], wantName)
				}
				if kt.sign {
					checkSignature(t, h, name, kt.name, pub)
				}
			}
			if kt.encrypt {
				pt := b64("round trip of " + kt.name)
				ct := h.must(200, "POST", "transit/encrypt/"+name, map[string]any{"plaintext": pt})
				if !strings.HasPrefix(ct.str("ciphertext"), "vault:v1:") || ct.data()["key_version"] != 1.0 {
					t.Fatalf("encrypt: %s", ct.raw)
				}
				dec := h.must(200, "POST", "transit/decrypt/"+name, map[string]any{"ciphertext": ct.str("ciphertext")})
				if dec.str("plaintext") != pt {
					t.Fatalf("decrypt: %s", dec.raw)
				}
			} else {
				h.must(400, "POST", "transit/encrypt/"+name, map[string]any{"plaintext": b64("x")})
			}
			if !kt.sign {
				h.must(400, "POST", "transit/sign/"+name, map[string]any{"input": b64("x")})
			}
			// Every type can HMAC (with its own HMAC key).
			mac := h.must(200, "POST", "transit/hmac/"+name, map[string]any{"input": b64("data")}).str("hmac")
			if !strings.HasPrefix(mac, "vault:v1:") || len(sigBody(t, mac)) != 32 {
				t.Fatalf("hmac %q", mac)
			}
			if v := h.must(200, "POST", "transit/verify/"+name, map[string]any{"input": b64("data"), "hmac": mac}).data()["valid"]; v != true {
				t.Fatalf("hmac verify: %v", v)
			}
			if v := h.must(200, "POST", "transit/verify/"+name, map[string]any{"input": b64("other"), "hmac": mac}).data()["valid"]; v != false {
				t.Fatalf("hmac verify of other input: %v", v)
			}
		})
	}
}

func parsePublic(t testing.TB, typ, s string) crypto.PublicKey {
	t.Helper()
	if typ == "ed25519" {
		b := unb64(t, s)
		if len(b) != ed25519.PublicKeySize {
			t.Fatalf("ed25519 public key of %d bytes", len(b))
		}
		return ed25519.PublicKey(b)
	}
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatalf("public key is not PEM: %q", s)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if want := map[string]string{"ecdsa-p256": "P-256", "ecdsa-p384": "P-384", "ecdsa-p521": "P-521"}[typ]; p.Curve.Params().Name != want {
			t.Fatalf("curve %s for %s", p.Curve.Params().Name, typ)
		}
	case *rsa.PublicKey:
		if want := map[string]int{"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}[typ]; p.N.BitLen() != want {
			t.Fatalf("%d-bit modulus for %s", p.N.BitLen(), typ)
		}
	default:
		t.Fatalf("public key of type %T for %s", pub, typ)
	}
	return pub
}

// checkSignature signs through the API and verifies with the standard
// library, and the other way round for tampered input.
func checkSignature(t testing.TB, h *harness, name, typ string, pub crypto.PublicKey) {
	t.Helper()
	msg := []byte("signed message")
	r := h.must(200, "POST", "transit/sign/"+name, map[string]any{"input": b64(string(msg))})
	sig := r.str("signature")
	if !strings.HasPrefix(sig, "vault:v1:") || r.data()["key_version"] != 1.0 {
		t.Fatalf("sign: %s", r.raw)
	}
	body := sigBody(t, sig)
	digest := sha256.Sum256(msg)
	var ok bool
	switch p := pub.(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(p, msg, body)
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(p, digest[:], body)
	case *rsa.PublicKey:
		ok = rsa.VerifyPSS(p, crypto.SHA256, digest[:], body, nil) == nil
	}
	if !ok {
		t.Fatalf("%s signature does not verify with the standard library", typ)
	}
	for input, want := range map[string]bool{string(msg): true, "tampered": false} {
		v := h.must(200, "POST", "transit/verify/"+name, map[string]any{"input": b64(input), "signature": sig}).data()["valid"]
		if v != want {
			t.Fatalf("verify(%q) = %v, want %v", input, v, want)
		}
	}
}

// TestEncryptionModes covers associated data, derivation with a context
// and convergent encryption for every AEAD type.
func TestEncryptionModes(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, typ := range []string{"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"} {
		t.Run(typ, func(t *testing.T) {
			h := h.with(t)
			plain, der, conv := "p-"+typ, "d-"+typ, "c-"+typ
			h.createKey(plain, map[string]any{"type": typ})
			h.createKey(der, map[string]any{"type": typ, "derived": true})
			h.createKey(conv, map[string]any{"type": typ, "derived": true, "convergent_encryption": true})
			if info := h.keyInfo(conv); info["derived"] != true || info["convergent_encryption"] != true || info["kdf"] != "hkdf_sha256" {
				t.Fatalf("convergent key info %v", info)
			}
			pt, ad := b64("secret"), b64("header")

			// Associated data is bound: the right one decrypts, others fail.
			ct := h.must(200, "POST", "transit/encrypt/"+plain, map[string]any{"plaintext": pt, "associated_data": ad}).str("ciphertext")
			if got := h.must(200, "POST", "transit/decrypt/"+plain, map[string]any{"ciphertext": ct, "associated_data": ad}).str("plaintext"); got != pt {
				t.Fatalf("decrypt with associated data: %q", got)
			}
			h.must(400, "POST", "transit/decrypt/"+plain, map[string]any{"ciphertext": ct})

			// Empty plaintext round-trips.
			ct = h.must(200, "POST", "transit/encrypt/"+plain, map[string]any{"plaintext": ""}).str("ciphertext")
			if r := h.must(200, "POST", "transit/decrypt/"+plain, map[string]any{"ciphertext": ct}); r.str("plaintext") != "" || r.data()["plaintext"] == nil {
				t.Fatalf("empty plaintext: %s", r.raw)
			}

			// Derived: the context is required and bound.
			ctxA, ctxB := b64("tenant-a"), b64("tenant-b")
			ct = h.must(200, "POST", "transit/encrypt/"+der, map[string]any{"plaintext": pt, "context": ctxA}).str("ciphertext")
			if got := h.must(200, "POST", "transit/decrypt/"+der, map[string]any{"ciphertext": ct, "context": ctxA}).str("plaintext"); got != pt {
				t.Fatalf("derived decrypt %q", got)
			}
			r := h.must(400, "POST", "transit/decrypt/"+der, map[string]any{"ciphertext": ct, "context": ctxB})
			if r.errs()[0] != "invalid ciphertext: message authentication failed" {
				t.Fatalf("wrong context: %v", r.errs())
			}
			h.must(400, "POST", "transit/decrypt/"+der, map[string]any{"ciphertext": ct})
			// Derived but not convergent: two encryptions differ.
			ct2 := h.must(200, "POST", "transit/encrypt/"+der, map[string]any{"plaintext": pt, "context": ctxA}).str("ciphertext")
			if ct2 == ct {
				t.Fatal("a non-convergent key gave the same ciphertext twice")
			}

			// Convergent: same plaintext and context, same ciphertext.
			c1 := h.must(200, "POST", "transit/encrypt/"+conv, map[string]any{"plaintext": pt, "context": ctxA}).str("ciphertext")
			c2 := h.must(200, "POST", "transit/encrypt/"+conv, map[string]any{"plaintext": pt, "context": ctxA}).str("ciphertext")
			c3 := h.must(200, "POST", "transit/encrypt/"+conv, map[string]any{"plaintext": pt, "context": ctxB}).str("ciphertext")
			c4 := h.must(200, "POST", "transit/encrypt/"+conv, map[string]any{"plaintext": b64("other"), "context": ctxA}).str("ciphertext")
			if c1 != c2 || c1 == c3 || c1 == c4 {
				t.Fatalf("convergent: %q %q %q %q", c1, c2, c3, c4)
			}
			if got := h.must(200, "POST", "transit/decrypt/"+conv, map[string]any{"ciphertext": c1, "context": ctxA}).str("plaintext"); got != pt {
				t.Fatalf("convergent decrypt %q", got)
			}
		})
	}
	t.Run("rsa refuses associated data", func(t *testing.T) {
		h := h.with(t)
		h.createKey("rsa", map[string]any{"type": "rsa-2048"})
		r := h.must(400, "POST", "transit/encrypt/rsa", map[string]any{"plaintext": b64("x"), "associated_data": b64("ad")})
		if r.errs()[0] != "associated_data is only supported by AEAD key types" {
			t.Fatal(r.errs())
		}
		r = h.must(400, "POST", "transit/encrypt/rsa", map[string]any{"plaintext": b64(strings.Repeat("x", 300))})
		if r.errs()[0] != "plaintext too long for key type rsa-2048: at most 190 bytes" {
			t.Fatal(r.errs())
		}
	})
}

// TestUpsert: encrypting with a missing key creates it, as in Vault.
func TestUpsert(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r := h.must(200, "POST", "transit/encrypt/up1", map[string]any{"plaintext": b64("x")})
	if len(r.warnings()) != 0 {
		t.Fatalf("warnings %v", r.warnings())
	}
	if info := h.keyInfo("up1"); info["type"] != "aes256-gcm96" || info["derived"] != false {
		t.Fatalf("upserted key %v", info)
	}
	// A context makes it derived; type and convergence are taken.
	h.must(200, "POST", "transit/encrypt/up2", map[string]any{"plaintext": b64("x"), "context": b64("c"), "type": "chacha20-poly1305", "convergent_encryption": true})
	if info := h.keyInfo("up2"); info["type"] != "chacha20-poly1305" || info["derived"] != true || info["convergent_encryption"] != true {
		t.Fatalf("upserted key %v", info)
	}
	// In a batch the first item's context decides.
	h.must(200, "POST", "transit/encrypt/up3", map[string]any{"batch_input": []any{
		map[string]any{"plaintext": b64("x"), "context": b64("c1")},
		map[string]any{"plaintext": b64("y"), "context": b64("c2")},
	}})
	if info := h.keyInfo("up3"); info["derived"] != true {
		t.Fatalf("upserted key %v", info)
	}
	// An existing key ignores create parameters without a warning.
	r = h.must(200, "POST", "transit/encrypt/up1", map[string]any{"plaintext": b64("x"), "type": "aes128-gcm96"})
	if len(r.warnings()) != 0 || h.keyInfo("up1")["type"] != "aes256-gcm96" {
		t.Fatalf("existing key changed or warned: %s", r.raw)
	}
	// Other operations do not create keys.
	h.must(400, "POST", "transit/sign/up4", map[string]any{"input": b64("x")})
	h.must(400, "POST", "transit/hmac/up4", map[string]any{"input": b64("x")})
	h.must(400, "POST", "transit/datakey/plaintext/up4", nil)
	h.must(404, "GET", "transit/keys/up4", nil)
}

// TestRotationAndVersions covers rotate, rewrap, min_decryption_version,
// min_encryption_version and trim.
func TestRotationAndVersions(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("k", nil)
	pt := b64("versioned")
	ct1 := h.must(200, "POST", "transit/encrypt/k", map[string]any{"plaintext": pt}).str("ciphertext")
	r := h.must(200, "POST", "transit/keys/k/rotate", nil)
	if r.data()["latest_version"] != 2.0 {
		t.Fatalf("rotate answered %s", r.raw)
	}
	h.must(200, "POST", "transit/keys/k/rotate", map[string]any{})
	info := h.keyInfo("k")
	if info["latest_version"] != 3.0 || len(info["keys"].(map[string]any)) != 3 {
		t.Fatalf("after two rotations %v", info)
	}
	ct3 := h.must(200, "POST", "transit/encrypt/k", map[string]any{"plaintext": pt}).str("ciphertext")
	if !strings.HasPrefix(ct3, "vault:v3:") {
		t.Fatalf("new ciphertext %q", ct3)
	}
	// Old ciphertexts still decrypt; an older version can still be chosen.
	for _, ct := range []string{ct1, ct3} {
		if got := h.must(200, "POST", "transit/decrypt/k", map[string]any{"ciphertext": ct}).str("plaintext"); got != pt {
			t.Fatalf("decrypt %q: %q", ct, got)
		}
	}
	ct2 := h.must(200, "POST", "transit/encrypt/k", map[string]any{"plaintext": pt, "key_version": 2}).str("ciphertext")
	if !strings.HasPrefix(ct2, "vault:v2:") {
		t.Fatalf("key_version 2 gave %q", ct2)
	}
	// Rewrap moves a ciphertext to the latest version without showing it.
	rw := h.must(200, "POST", "transit/rewrap/k", map[string]any{"ciphertext": ct1})
	if !strings.HasPrefix(rw.str("ciphertext"), "vault:v3:") || rw.data()["key_version"] != 3.0 || rw.data()["plaintext"] != nil {
		t.Fatalf("rewrap %s", rw.raw)
	}
	if got := h.must(200, "POST", "transit/decrypt/k", map[string]any{"ciphertext": rw.str("ciphertext")}).str("plaintext"); got != pt {
		t.Fatalf("rewrapped decrypts to %q", got)
	}
	// min_decryption_version blocks older ciphertexts (and their rewrap).
	h.must(200, "POST", "transit/keys/k/config", map[string]any{"min_decryption_version": 2})
	for _, op := range []string{"decrypt", "rewrap"} {
		r := h.must(400, "POST", "transit/"+op+"/k", map[string]any{"ciphertext": ct1})
		if r.errs()[0] != "ciphertext or signature version is disallowed by policy (too old)" {
			t.Fatalf("%s of v1: %v", op, r.errs())
		}
	}
	h.must(200, "POST", "transit/decrypt/k", map[string]any{"ciphertext": ct2})
	// Lowering it again is allowed while v1 exists.
	h.must(200, "POST", "transit/keys/k/config", map[string]any{"min_decryption_version": 1})
	h.must(200, "POST", "transit/decrypt/k", map[string]any{"ciphertext": ct1})
	// 0 means 1, with a warning.
	if w := h.must(200, "POST", "transit/keys/k/config", map[string]any{"min_decryption_version": 0}).warnings(); len(w) != 1 {
		t.Fatalf("warnings %v", w)
	}
	// min_encryption_version refuses older versions for encryption.
	h.must(200, "POST", "transit/keys/k/config", map[string]any{"min_decryption_version": 2, "min_encryption_version": 3})
	r = h.must(400, "POST", "transit/encrypt/k", map[string]any{"plaintext": pt, "key_version": 2})
	if r.errs()[0] != "key_version 2 is below the key's min_encryption_version 3" {
		t.Fatal(r.errs())
	}
	if ct := h.must(200, "POST", "transit/encrypt/k", map[string]any{"plaintext": pt}).str("ciphertext"); !strings.HasPrefix(ct, "vault:v3:") {
		t.Fatal(ct)
	}
	// Trim deletes versions below min_available_version for good.
	info = h.must(200, "POST", "transit/keys/k/trim", map[string]any{"min_available_version": 2}).data()
	if info["min_available_version"] != 2.0 || slices.Contains(keysOf(info["keys"]), "1") || len(info["keys"].(map[string]any)) != 2 {
		t.Fatalf("after trim %v", info)
	}
	r = h.must(400, "POST", "transit/keys/k/config", map[string]any{"min_decryption_version": 1})
	if r.errs()[0] != "cannot set min_decryption_version to 1: versions below 2 were trimmed" {
		t.Fatal(r.errs())
	}
	r = h.must(400, "POST", "transit/keys/k/trim", map[string]any{"min_available_version": 1})
	if r.errs()[0] != "min_available_version cannot go down (it is 2)" {
		t.Fatal(r.errs())
	}
	h.must(400, "POST", "transit/decrypt/k", map[string]any{"ciphertext": ct1})
	if got := h.must(200, "POST", "transit/decrypt/k", map[string]any{"ciphertext": ct2}).str("plaintext"); got != pt {
		t.Fatal(got)
	}
}

func keysOf(m any) []string {
	var out []string
	for k := range m.(map[string]any) {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestConfigAndDelete covers the settings that only go one way, deletion
// and listing.
func TestConfigAndDelete(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	// No keys yet: 404 with an empty error list, exactly as Vault.
	if r := h.must(404, "LIST", "transit/keys", nil); string(r.raw) != "{\"errors\":[]}\n" {
		t.Fatalf("empty list: %q", r.raw)
	}
	h.createKey("b", nil)
	h.createKey("a", nil)
	h.createKey("c.d-e_f", nil)
	want := []any{"a", "b", "c.d-e_f"}
	for _, r := range []resp{
		h.must(200, "LIST", "transit/keys", nil),
		h.must(200, "LIST", "transit/keys/", nil),
		h.must(200, "GET", "transit/keys?list=true", nil),
		h.must(200, "GET", "transit/keys/?list=1", nil),
	} {
		if got, _ := r.data()["keys"].([]any); !slices.Equal(got, want) {
			t.Fatalf("list %s", r.raw)
		}
	}
	// A second create keeps the key and says so.
	r := h.createKey("a", map[string]any{"type": "aes128-gcm96"})
	if r.data()["type"] != "aes256-gcm96" || len(r.warnings()) != 1 {
		t.Fatalf("second create %s", r.raw)
	}

	// exportable and allow_plaintext_backup can be turned on, never off:
	// false is ignored, as in Vault.
	info := h.must(200, "POST", "transit/keys/a/config", map[string]any{"exportable": true, "allow_plaintext_backup": true}).data()
	if info["exportable"] != true || info["allow_plaintext_backup"] != true {
		t.Fatalf("config %v", info)
	}
	info = h.must(200, "POST", "transit/keys/a/config", map[string]any{"exportable": false, "allow_plaintext_backup": false}).data()
	if info["exportable"] != true || info["allow_plaintext_backup"] != true {
		t.Fatalf("config false after true: %v; want both still true", info)
	}

	// auto_rotate_period in seconds, Go durations or days; 0 disables.
	for in, want := range map[any]float64{"24h": 86400, "30d": 2592000, 7200: 7200, "3600": 3600, "0": 0} {
		info := h.must(200, "POST", "transit/keys/b/config", map[string]any{"auto_rotate_period": in}).data()
		if info["auto_rotate_period"] != want {
			t.Fatalf("auto_rotate_period %v: %v", in, info["auto_rotate_period"])
		}
	}
	// Unknown parameters are ignored with Vault's warning.
	r = h.must(200, "POST", "transit/keys/b/config", map[string]any{"deletion_allowed": false, "colour": "blue"})
	if w := r.warnings(); len(w) != 1 || w[0] != "Endpoint ignored these unrecognized parameters: [colour]" {
		t.Fatalf("warnings %v", w)
	}

	// Deletion needs deletion_allowed.
	h.must(400, "DELETE", "transit/keys/b", nil)
	h.must(200, "POST", "transit/keys/b/config", map[string]any{"deletion_allowed": true})
	if r := h.do("DELETE", "transit/keys/b", nil); r.status != 204 || len(r.raw) != 0 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	h.must(404, "GET", "transit/keys/b", nil)
	h.must(400, "POST", "transit/decrypt/b", map[string]any{"ciphertext": "vault:v1:" + b64(strings.Repeat("x", 40))})
	h.must(400, "DELETE", "transit/keys/b", nil)
	if got, _ := h.must(200, "LIST", "transit/keys", nil).data()["keys"].([]any); !slices.Equal(got, []any{"a", "c.d-e_f"}) {
		t.Fatalf("list after delete %v", got)
	}
	// A new key under the old name is a new key.
	h.createKey("b", map[string]any{"type": "ed25519"})
	if h.keyInfo("b")["type"] != "ed25519" {
		t.Fatal("recreated key has the old settings")
	}
}

// TestVaultCLIStrings: the vault CLI sends every value as a string.
func TestVaultCLIStrings(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("k", map[string]any{"exportable": "true", "derived": "false", "auto_rotate_period": "48h"})
	h.createKey("h", map[string]any{"type": "hmac", "key_size": "64"})
	if info := h.keyInfo("h"); info["key_size"] != 64.0 {
		t.Fatalf("key_size %v", info["key_size"])
	}
	h.must(200, "POST", "transit/keys/k/rotate", nil)
	info := h.must(200, "POST", "transit/keys/k/config", map[string]any{"min_decryption_version": "2", "deletion_allowed": "true", "min_encryption_version": "2"}).data()
	if info["exportable"] != true || info["min_decryption_version"] != 2.0 || info["deletion_allowed"] != true || info["auto_rotate_period"] != 172800.0 {
		t.Fatalf("info %v", info)
	}
	ct := h.must(200, "POST", "transit/encrypt/k", map[string]any{"plaintext": b64("x"), "key_version": "2"}).str("ciphertext")
	if !strings.HasPrefix(ct, "vault:v2:") {
		t.Fatal(ct)
	}
	dk := h.must(200, "POST", "transit/datakey/plaintext/k", map[string]any{"bits": "512"})
	if len(unb64(t, dk.str("plaintext"))) != 64 {
		t.Fatal(dk.raw)
	}
	if rb := h.must(200, "POST", "transit/random", map[string]any{"bytes": "24"}).str("random_bytes"); len(unb64(t, rb)) != 24 {
		t.Fatal(rb)
	}
	h.createKey("ec", map[string]any{"type": "ecdsa-p256"})
	digest := sha256.Sum256([]byte("m"))
	h.must(200, "POST", "transit/sign/ec", map[string]any{"input": base64.StdEncoding.EncodeToString(digest[:]), "prehashed": "true"})
	r := h.must(207, "POST", "transit/encrypt/k", map[string]any{"partial_failure_response_code": "207", "batch_input": []any{
		map[string]any{"plaintext": b64("a")}, map[string]any{"plaintext": "!"},
	}})
	if res := r.data()["batch_results"].([]any); len(res) != 2 {
		t.Fatal(r.raw)
	}
}

// TestDataKey covers both kinds, bit sizes and derived keys.
func TestDataKey(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("k", nil)
	h.createKey("d", map[string]any{"derived": true})
	for _, bits := range []int{0, 128, 256, 512} {
		body := map[string]any{}
		want := 32
		if bits != 0 {
			body["bits"], want = bits, bits/8
		}
		r := h.must(200, "POST", "transit/datakey/plaintext/k", body)
		dk := unb64(t, r.str("plaintext"))
		if len(dk) != want || r.data()["key_version"] != 1.0 {
			t.Fatalf("bits %d: %s", bits, r.raw)
		}
		back := h.must(200, "POST", "transit/decrypt/k", map[string]any{"ciphertext": r.str("ciphertext")}).str("plaintext")
		if !slices.Equal(unb64(t, back), dk) {
			t.Fatal("the wrapped data key does not decrypt to the plaintext one")
		}
		w := h.must(200, "POST", "transit/datakey/wrapped/k", body)
		if _, has := w.data()["plaintext"]; has || !strings.HasPrefix(w.str("ciphertext"), "vault:v1:") {
			t.Fatalf("wrapped: %s", w.raw)
		}
		if got := unb64(t, h.must(200, "POST", "transit/decrypt/k", map[string]any{"ciphertext": w.str("ciphertext")}).str("plaintext")); len(got) != want {
			t.Fatalf("wrapped key of %d bytes", len(got))
		}
	}
	ctx := b64("ctx")
	r := h.must(200, "POST", "transit/datakey/plaintext/d", map[string]any{"context": ctx})
	if back := h.must(200, "POST", "transit/decrypt/d", map[string]any{"ciphertext": r.str("ciphertext"), "context": ctx}).str("plaintext"); back != r.str("plaintext") {
		t.Fatal("derived data key")
	}
	h.must(400, "POST", "transit/datakey/plaintext/d", nil)
}

// TestSignVerify covers hash algorithms (path and body), prehashed input,
// PSS and PKCS#1 v1.5, JWS marshaling, derived ed25519 and rotation.
func TestSignVerify(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("ec", map[string]any{"type": "ecdsa-p384"})
	h.createKey("rsa", map[string]any{"type": "rsa-2048"})
	h.createKey("ed", map[string]any{"type": "ed25519"})
	h.createKey("edd", map[string]any{"type": "ed25519", "derived": true})
	ecPub := parsePublic(t, "ecdsa-p384", h.keyInfo("ec")["keys"].(map[string]any)["1"].(map[string]any)["public_key"].(string)).(*ecdsa.PublicKey)
	rsaPub := parsePublic(t, "rsa-2048", h.keyInfo("rsa")["keys"].(map[string]any)["1"].(map[string]any)["public_key"].(string)).(*rsa.PublicKey)
	msg := []byte("the message")
	d384 := sha512.Sum384(msg)
	d512 := sha512.Sum512(msg)
	d256 := sha256.Sum256(msg)

	// hash_algorithm in the path, then in the body.
	sig := h.must(200, "POST", "transit/sign/ec/sha2-384", map[string]any{"input": b64(string(msg))}).str("signature")
	if !ecdsa.VerifyASN1(ecPub, d384[:], sigBody(t, sig)) {
		t.Fatal("ecdsa sha2-384 (path) does not verify")
	}
	sig = h.must(200, "POST", "transit/sign/ec", map[string]any{"input": b64(string(msg)), "hash_algorithm": "sha2-512"}).str("signature")
	if !ecdsa.VerifyASN1(ecPub, d512[:], sigBody(t, sig)) {
		t.Fatal("ecdsa sha2-512 (body) does not verify")
	}
	if v := h.must(200, "POST", "transit/verify/ec/sha2-512", map[string]any{"input": b64(string(msg)), "signature": sig}).data()["valid"]; v != true {
		t.Fatal("verify with the path algorithm")
	}
	if v := h.must(200, "POST", "transit/verify/ec", map[string]any{"input": b64(string(msg)), "signature": sig}).data()["valid"]; v != false {
		t.Fatal("a sha2-512 signature verified as sha2-256")
	}
	// Prehashed input.
	sig = h.must(200, "POST", "transit/sign/ec/sha2-256", map[string]any{"input": base64.StdEncoding.EncodeToString(d256[:]), "prehashed": true}).str("signature")
	if !ecdsa.VerifyASN1(ecPub, d256[:], sigBody(t, sig)) {
		t.Fatal("prehashed ecdsa does not verify")
	}
	// JWS: fixed-size r||s in unpadded base64url.
	sig = h.must(200, "POST", "transit/sign/ec", map[string]any{"input": b64(string(msg)), "marshaling_algorithm": "jws"}).str("signature")
	raw := sigBody(t, sig)
	if len(raw) != 96 || strings.ContainsAny(strings.SplitN(sig, ":", 3)[2], "+/=") {
		t.Fatalf("jws signature %q", sig)
	}
	if !ecdsa.Verify(ecPub, d256[:], new(big.Int).SetBytes(raw[:48]), new(big.Int).SetBytes(raw[48:])) {
		t.Fatal("jws signature does not verify")
	}
	if v := h.must(200, "POST", "transit/verify/ec", map[string]any{"input": b64(string(msg)), "signature": sig, "marshaling_algorithm": "jws"}).data()["valid"]; v != true {
		t.Fatal("jws verify")
	}

	// RSA: PSS (default) and PKCS#1 v1.5, salt lengths.
	sig = h.must(200, "POST", "transit/sign/rsa", map[string]any{"input": b64(string(msg))}).str("signature")
	if rsa.VerifyPSS(rsaPub, crypto.SHA256, d256[:], sigBody(t, sig), nil) != nil {
		t.Fatal("rsa pss")
	}
	sig = h.must(200, "POST", "transit/sign/rsa/sha2-512", map[string]any{"input": b64(string(msg)), "signature_algorithm": "pkcs1v15"}).str("signature")
	if rsa.VerifyPKCS1v15(rsaPub, crypto.SHA512, d512[:], sigBody(t, sig)) != nil {
		t.Fatal("rsa pkcs1v15")
	}
	if v := h.must(200, "POST", "transit/verify/rsa/sha2-512", map[string]any{"input": b64(string(msg)), "signature": sig, "signature_algorithm": "pkcs1v15"}).data()["valid"]; v != true {
		t.Fatal("pkcs1v15 verify")
	}
	sig = h.must(200, "POST", "transit/sign/rsa", map[string]any{"input": b64(string(msg)), "salt_length": "hash"}).str("signature")
	if rsa.VerifyPSS(rsaPub, crypto.SHA256, d256[:], sigBody(t, sig), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil {
		t.Fatal("rsa pss salt_length hash")
	}
	// Prehashed with hash_algorithm none (PKCS#1 v1.5 only).
	sig = h.must(200, "POST", "transit/sign/rsa/none", map[string]any{"input": b64("raw digest info"), "prehashed": true, "signature_algorithm": "pkcs1v15"}).str("signature")
	if rsa.VerifyPKCS1v15(rsaPub, 0, []byte("raw digest info"), sigBody(t, sig)) != nil {
		t.Fatal("rsa none")
	}

	// Derived ed25519: the context picks the key; the answer names its public key.
	r := h.must(200, "POST", "transit/sign/edd", map[string]any{"input": b64(string(msg)), "context": b64("c1")})
	pub := ed25519.PublicKey(unb64(t, r.str("public_key")))
	if !ed25519.Verify(pub, msg, sigBody(t, r.str("signature"))) {
		t.Fatal("derived ed25519")
	}
	if v := h.must(200, "POST", "transit/verify/edd", map[string]any{"input": b64(string(msg)), "signature": r.str("signature"), "context": b64("c2")}).data()["valid"]; v != false {
		t.Fatal("derived signature verified under another context")
	}
	h.must(400, "POST", "transit/sign/edd", map[string]any{"input": b64(string(msg))})
	if _, has := h.keyInfo("edd")["keys"].(map[string]any)["1"].(map[string]any)["public_key"]; has {
		t.Fatal("a derived key shows a public key without a context")
	}
	if r := h.must(200, "POST", "transit/sign/ed", map[string]any{"input": b64(string(msg)), "prehashed": true}); len(r.warnings()) != 1 {
		t.Fatalf("prehashed ed25519: %s; want a warning that it has no effect", r.raw)
	}

	// Signatures of an older version verify after rotation; sign picks the latest.
	old := h.must(200, "POST", "transit/sign/ed", map[string]any{"input": b64(string(msg))}).str("signature")
	h.must(200, "POST", "transit/keys/ed/rotate", nil)
	r = h.must(200, "POST", "transit/sign/ed", map[string]any{"input": b64(string(msg))})
	if !strings.HasPrefix(r.str("signature"), "vault:v2:") || r.data()["key_version"] != 2.0 {
		t.Fatal(r.raw)
	}
	if v := h.must(200, "POST", "transit/verify/ed", map[string]any{"input": b64(string(msg)), "signature": old}).data()["valid"]; v != true {
		t.Fatal("v1 signature after rotation")
	}
	h.must(200, "POST", "transit/keys/ed/config", map[string]any{"min_decryption_version": 2})
	h.must(400, "POST", "transit/verify/ed", map[string]any{"input": b64(string(msg)), "signature": old})
	if v1 := h.must(200, "POST", "transit/sign/ed", map[string]any{"input": b64(string(msg)), "key_version": 1}).str("signature"); !strings.HasPrefix(v1, "vault:v1:") {
		t.Fatal(v1)
	}
}

// TestHMAC covers algorithms in the path and the body, verification and
// an hmac key's own material.
func TestHMAC(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("hk", map[string]any{"type": "hmac", "exportable": true})
	keyB64 := h.must(200, "GET", "transit/export/hmac-key/hk/1", nil).data()["keys"].(map[string]any)["1"].(string)
	key := unb64(t, keyB64)
	msg := []byte("mac me")
	want := hmac.New(sha512.New, key)
	want.Write(msg)
	for _, r := range []resp{
		h.must(200, "POST", "transit/hmac/hk/sha2-512", map[string]any{"input": b64(string(msg))}),
		h.must(200, "POST", "transit/hmac/hk", map[string]any{"input": b64(string(msg)), "algorithm": "sha2-512"}),
	} {
		if !hmac.Equal(sigBody(t, r.str("hmac")), want.Sum(nil)) {
			t.Fatalf("hmac %s differs from the standard library's", r.raw)
		}
	}
	mac := h.must(200, "POST", "transit/hmac/hk/sha2-512", map[string]any{"input": b64(string(msg))}).str("hmac")
	if v := h.must(200, "POST", "transit/verify/hk/sha2-512", map[string]any{"input": b64(string(msg)), "hmac": mac}).data()["valid"]; v != true {
		t.Fatal("verify")
	}
	if v := h.must(200, "POST", "transit/verify/hk", map[string]any{"input": b64(string(msg)), "hmac": mac}).data()["valid"]; v != false {
		t.Fatal("a sha2-512 hmac verified as sha2-256")
	}
	h.must(200, "POST", "transit/keys/hk/rotate", nil)
	if v := h.must(200, "POST", "transit/verify/hk/sha2-512", map[string]any{"input": b64(string(msg)), "hmac": mac}).data()["valid"]; v != true {
		t.Fatal("v1 hmac after rotation")
	}
	if m := h.must(200, "POST", "transit/hmac/hk", map[string]any{"input": b64(string(msg))}).str("hmac"); !strings.HasPrefix(m, "vault:v2:") {
		t.Fatal(m)
	}
}

// TestRandomAndHash covers transit/random and transit/hash.
func TestRandomAndHash(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for path, want := range map[string]int{"transit/random": 32, "transit/random/16": 16, "transit/random/platform/8": 8, "transit/random/all": 32} {
		rb := h.must(200, "POST", path, nil).str("random_bytes")
		if len(unb64(t, rb)) != want {
			t.Fatalf("%s: %q", path, rb)
		}
	}
	rb := h.must(200, "POST", "transit/random/20", map[string]any{"format": "hex"}).str("random_bytes")
	if b, err := hex.DecodeString(rb); err != nil || len(b) != 20 {
		t.Fatalf("hex random %q", rb)
	}
	in := []byte("hash me")
	s256 := sha256.Sum256(in)
	s512 := sha512.Sum512(in)
	if sum := h.must(200, "POST", "transit/hash", map[string]any{"input": b64(string(in))}).str("sum"); sum != hex.EncodeToString(s256[:]) {
		t.Fatalf("sha2-256 %q", sum)
	}
	if sum := h.must(200, "POST", "transit/hash/sha2-512", map[string]any{"input": b64(string(in)), "format": "base64"}).str("sum"); sum != base64.StdEncoding.EncodeToString(s512[:]) {
		t.Fatalf("sha2-512 %q", sum)
	}
	if sum := h.must(200, "POST", "transit/hash", map[string]any{"input": b64(string(in)), "algorithm": "sha3-256"}).str("sum"); len(sum) != 64 {
		t.Fatalf("sha3-256 %q", sum)
	}
}

// TestExport: only exportable keys give private material; a public key is
// always available; exported material works with the standard library.
func TestExport(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("aes", map[string]any{"exportable": true})
	h.createKey("ed", map[string]any{"type": "ed25519"})
	h.createKey("edx", map[string]any{"type": "ed25519", "exportable": true})

	// The exported AES key decrypts a transit ciphertext.
	pt := []byte("exported")
	ct := h.must(200, "POST", "transit/encrypt/aes", map[string]any{"plaintext": b64(string(pt))}).str("ciphertext")
	ex := h.must(200, "GET", "transit/export/encryption-key/aes", nil).data()
	if ex["name"] != "aes" || ex["type"] != "aes256-gcm96" {
		t.Fatalf("export %v", ex)
	}
	key := unb64(t, ex["keys"].(map[string]any)["1"].(string))
	blk, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(blk)
	body := sigBody(t, ct)
	got, err := gcm.Open(nil, body[:12], body[12:], nil)
	if err != nil || string(got) != string(pt) {
		t.Fatalf("the exported key does not decrypt: %v", err)
	}
	h.must(200, "POST", "transit/keys/aes/rotate", nil)
	for path, want := range map[string][]string{
		"transit/export/encryption-key/aes":        {"1", "2"},
		"transit/export/encryption-key/aes/latest": {"2"},
		"transit/export/encryption-key/aes/1":      {"1"},
	} {
		if got := keysOf(h.must(200, "GET", path, nil).data()["keys"]); !slices.Equal(got, want) {
			t.Fatalf("%s: versions %v", path, got)
		}
	}

	// Public keys need no exportable flag; private ones do.
	pubS := h.must(200, "GET", "transit/export/public-key/ed", nil).data()["keys"].(map[string]any)["1"].(string)
	h.must(400, "GET", "transit/export/signing-key/ed", nil)
	sig := h.must(200, "POST", "transit/sign/ed", map[string]any{"input": b64("m")}).str("signature")
	if !ed25519.Verify(unb64(t, pubS), []byte("m"), sigBody(t, sig)) {
		t.Fatal("exported public key")
	}
	priv := ed25519.PrivateKey(unb64(t, h.must(200, "GET", "transit/export/signing-key/edx", nil).data()["keys"].(map[string]any)["1"].(string)))
	mySig := ed25519.Sign(priv, []byte("m"))
	if v := h.must(200, "POST", "transit/verify/edx", map[string]any{"input": b64("m"), "signature": "vault:v1:" + base64.StdEncoding.EncodeToString(mySig)}).data()["valid"]; v != true {
		t.Fatal("a signature made with the exported key does not verify")
	}
}

// TestBatches runs every data operation with batch_input and checks the
// status rules: all good 200, any failure 400 unless
// partial_failure_response_code is given and something succeeded; the
// references come back.
func TestBatches(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("aes", nil)
	h.createKey("ed", map[string]any{"type": "ed25519"})

	items := func(kv ...map[string]any) map[string]any {
		l := make([]any, len(kv))
		for i, m := range kv {
			l[i] = m
		}
		return map[string]any{"batch_input": l}
	}
	results := func(r resp) []map[string]any {
		t.Helper()
		l, _ := r.data()["batch_results"].([]any)
		out := make([]map[string]any, len(l))
		for i, v := range l {
			out[i], _ = v.(map[string]any)
		}
		return out
	}

	// encrypt → decrypt → rewrap, all good.
	enc := results(h.must(200, "POST", "transit/encrypt/aes", items(
		map[string]any{"plaintext": b64("one"), "reference": "r1"},
		map[string]any{"plaintext": b64("two"), "reference": "r2"},
	)))
	if len(enc) != 2 || enc[0]["reference"] != "r1" || enc[1]["reference"] != "r2" || enc[0]["key_version"] != 1.0 {
		t.Fatalf("encrypt batch %v", enc)
	}
	dec := results(h.must(200, "POST", "transit/decrypt/aes", items(
		map[string]any{"ciphertext": enc[0]["ciphertext"], "reference": "a"},
		map[string]any{"ciphertext": enc[1]["ciphertext"]},
	)))
	if dec[0]["plaintext"] != b64("one") || dec[1]["plaintext"] != b64("two") || dec[0]["reference"] != "a" || dec[1]["reference"] != "" {
		t.Fatalf("decrypt batch %v", dec)
	}
	h.must(200, "POST", "transit/keys/aes/rotate", nil)
	rw := results(h.must(200, "POST", "transit/rewrap/aes", items(map[string]any{"ciphertext": enc[0]["ciphertext"]})))
	if !strings.HasPrefix(rw[0]["ciphertext"].(string), "vault:v2:") {
		t.Fatalf("rewrap batch %v", rw)
	}

	// A failing item: 400 with per-item errors; the good ones still answer.
	r := h.must(400, "POST", "transit/decrypt/aes", items(
		map[string]any{"ciphertext": enc[0]["ciphertext"], "reference": "ok"},
		map[string]any{"ciphertext": "vault:v1:" + b64(strings.Repeat("z", 40)), "reference": "bad"},
	))
	res := results(r)
	if res[0]["plaintext"] != b64("one") || res[1]["error"] != "invalid ciphertext: message authentication failed" || res[1]["reference"] != "bad" {
		t.Fatalf("mixed batch %v", res)
	}
	// partial_failure_response_code applies when something succeeded...
	partial := items(
		map[string]any{"ciphertext": enc[0]["ciphertext"]},
		map[string]any{"ciphertext": "vault:v1:" + b64(strings.Repeat("z", 40))},
	)
	partial["partial_failure_response_code"] = 207
	h.must(207, "POST", "transit/decrypt/aes", partial)
	mixed := items(map[string]any{"plaintext": b64("x")}, map[string]any{"plaintext": "!"})
	mixed["partial_failure_response_code"] = 299
	h.must(299, "POST", "transit/encrypt/aes", mixed)
	// ...but not when everything failed.
	allBad := items(map[string]any{"plaintext": "!"}, map[string]any{})
	allBad["partial_failure_response_code"] = 207
	res = results(h.must(400, "POST", "transit/encrypt/aes", allBad))
	if res[1]["error"] != "missing plaintext to encrypt" {
		t.Fatalf("all bad %v", res)
	}

	// sign, verify, hmac.
	sigs := results(h.must(200, "POST", "transit/sign/ed", items(
		map[string]any{"input": b64("m1"), "reference": "s1"},
		map[string]any{"input": b64("m2")},
	)))
	if sigs[0]["reference"] != "s1" || sigs[1]["signature"] == nil {
		t.Fatalf("sign batch %v", sigs)
	}
	ver := results(h.must(200, "POST", "transit/verify/ed", items(
		map[string]any{"input": b64("m1"), "signature": sigs[0]["signature"]},
		map[string]any{"input": b64("m1"), "signature": sigs[1]["signature"]},
	)))
	if ver[0]["valid"] != true || ver[1]["valid"] != false {
		t.Fatalf("verify batch %v", ver)
	}
	macs := results(h.must(200, "POST", "transit/hmac/aes", items(
		map[string]any{"input": b64("m1")}, map[string]any{"input": b64("m2"), "reference": "h2"},
	)))
	if macs[1]["reference"] != "h2" || !strings.HasPrefix(macs[0]["hmac"].(string), "vault:v2:") {
		t.Fatalf("hmac batch %v", macs)
	}
	ver = results(h.must(400, "POST", "transit/verify/aes", items(
		map[string]any{"input": b64("m1"), "hmac": macs[0]["hmac"]},
		map[string]any{"input": "!", "hmac": macs[1]["hmac"]},
	)))
	if ver[0]["valid"] != true || ver[1]["error"] == nil {
		t.Fatalf("hmac verify batch %v", ver)
	}
	h.must(400, "POST", "transit/sign/ed", items(map[string]any{}))
}

// TestTokenHeadersAndLookupSelf: both token headers work everywhere.
func TestTokenHeadersAndLookupSelf(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, hdr := range []map[string]string{
		{"X-Vault-Token": rootToken},
		{"Authorization": "Bearer " + rootToken},
		{"Authorization": "bearer  " + rootToken},
	} {
		if r := h.doWith("POST", "transit/encrypt/k", map[string]any{"plaintext": b64("x")}, hdr); r.status != 200 {
			t.Fatalf("%v: %d %s", hdr, r.status, r.raw)
		}
		r := h.doWith("GET", "auth/token/lookup-self", nil, hdr)
		d := r.data()
		if r.status != 200 || d["id"] != rootToken || d["accessor"] == "" || d["display_name"] != "root" {
			t.Fatalf("lookup-self %s", r.raw)
		}
		if p, _ := d["policies"].([]any); len(p) != 1 || p[0] != "root" {
			t.Fatalf("policies %v", d["policies"])
		}
	}
	// The audit event names the token's accessor, never the token.
	ev := h.audit.last()
	if ev.Identity == "" || ev.Identity == rootToken || strings.Contains(fmt.Sprintf("%+v", ev), rootToken+" ") {
		t.Fatalf("audit identity %q", ev.Identity)
	}
	h.must(200, "POST", "auth/token/lookup-self", nil)
}
