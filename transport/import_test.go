package transport

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/keyraft/keyraft/transit"
)

// wrappingPEM reads the node's wrapping key.
func (h *harness) wrappingPEM() string {
	h.t.Helper()
	pemKey := h.must(200, "GET", "transit/wrapping_key", nil).str("public_key")
	if !strings.HasPrefix(pemKey, "-----BEGIN PUBLIC KEY-----") {
		h.t.Fatalf("wrapping key: %q", pemKey)
	}
	return pemKey
}

func parseWrappingPEM(t testing.TB, s string) *rsa.PublicKey {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatal("wrapping key is not PEM")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	pub, ok := k.(*rsa.PublicKey)
	if err != nil || !ok || pub.N.BitLen() != 4096 {
		t.Fatalf("wrapping key is not RSA-4096: %v", err)
	}
	return pub
}

// wrapFor wraps key as a client does (RSA-OAEP with hash + AES-KWP).
func wrapFor(t testing.TB, pemKey, hash string, key []byte) string {
	t.Helper()
	ct, err := transit.WrapForImport(pemKey, hash, key)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func bb64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// cipherBody decodes the base64 part of a vault:v<N>: string.
func cipherBody(t testing.TB, s, prefix string) []byte {
	t.Helper()
	if !strings.HasPrefix(s, prefix) {
		t.Fatalf("%q does not start with %q", s, prefix)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, prefix))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pkcs8(t testing.TB, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestBYOKRoundTrip: keys made here, wrapped here and imported are the
// keys keyraft then uses: what it encrypts, signs or MACs is checked here
// with the original key and the standard library alone.
func TestBYOKRoundTrip(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pemKey := h.wrappingPEM()
	if again := h.wrappingPEM(); again != pemKey {
		t.Fatal("the wrapping key changed between two reads")
	}
	parseWrappingPEM(t, pemKey)
	msg := []byte("the quick brown fox")
	digest := sha256.Sum256(msg)

	t.Run("aes256", func(t *testing.T) {
		h := h.with(t)
		key := make([]byte, 32)
		rand.Read(key)
		h.must(204, "POST", "transit/keys/aes/import", map[string]any{"ciphertext": wrapFor(t, pemKey, "", key), "type": "aes256-gcm96"})
		info := h.keyInfo("aes")
		if info["imported_key"] != true || info["imported_key_allow_rotation"] != false || info["allow_rotation"] != false || info["type"] != "aes256-gcm96" {
			t.Fatalf("key info: %v", info)
		}
		ct := h.must(200, "POST", "transit/encrypt/aes", map[string]any{"plaintext": bb64(msg)}).str("ciphertext")
		body := cipherBody(t, ct, "vault:v1:")
		blk, _ := aes.NewCipher(key)
		g, _ := cipher.NewGCM(blk)
		pt, err := g.Open(nil, body[:12], body[12:], nil)
		if err != nil || string(pt) != string(msg) {
			t.Fatalf("local decryption with the original key: %q, %v", pt, err)
		}
		// Imported keys do not rotate unless allowed, as in Vault.
		if r := h.do("POST", "transit/keys/aes/rotate", nil); r.status != 400 || !strings.Contains(strings.Join(r.errs(), ""), "does not allow rotation") {
			t.Fatalf("rotate of an imported key: %d %s", r.status, r.raw)
		}
		// import_version adds version 2, used from then on; version 1 still decrypts.
		key2 := make([]byte, 32)
		rand.Read(key2)
		h.must(204, "POST", "transit/keys/aes/import_version", map[string]any{"ciphertext": wrapFor(t, pemKey, "SHA512", key2), "hash_function": "SHA512"})
		ct2 := h.must(200, "POST", "transit/encrypt/aes", map[string]any{"plaintext": bb64(msg)}).str("ciphertext")
		body2 := cipherBody(t, ct2, "vault:v2:")
		blk2, _ := aes.NewCipher(key2)
		g2, _ := cipher.NewGCM(blk2)
		if pt, err := g2.Open(nil, body2[:12], body2[12:], nil); err != nil || string(pt) != string(msg) {
			t.Fatalf("version 2 is not the imported key: %v", err)
		}
		if got := h.must(200, "POST", "transit/decrypt/aes", map[string]any{"ciphertext": ct}).str("plaintext"); got != bb64(msg) {
			t.Fatalf("version 1 after import_version: %q", got)
		}
		// A version that holds a key is never replaced.
		if r := h.do("POST", "transit/keys/aes/import_version", map[string]any{"ciphertext": wrapFor(t, pemKey, "", key2), "version": 1}); r.status != 400 {
			t.Fatalf("replace version 1: %d %s", r.status, r.raw)
		}
	})

	t.Run("rsa-2048", func(t *testing.T) {
		h := h.with(t)
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		h.must(204, "POST", "transit/keys/rsa/import", map[string]any{"ciphertext": wrapFor(t, pemKey, "SHA1", pkcs8(t, k)), "hash_function": "sha1", "type": "rsa-2048"})
		sig := h.must(200, "POST", "transit/sign/rsa", map[string]any{"input": bb64(msg), "signature_algorithm": "pkcs1v15"}).str("signature")
		if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, digest[:], cipherBody(t, sig, "vault:v1:")); err != nil {
			t.Fatalf("signature does not verify with the original key: %v", err)
		}
		oaep, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, msg, nil)
		if got := h.must(200, "POST", "transit/decrypt/rsa", map[string]any{"ciphertext": "vault:v1:" + bb64(oaep)}).str("plaintext"); got != bb64(msg) {
			t.Fatalf("decrypt of a local OAEP ciphertext: %q", got)
		}
	})

	t.Run("ecdsa-p256", func(t *testing.T) {
		h := h.with(t)
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		h.must(204, "POST", "transit/keys/ec/import", map[string]any{"ciphertext": wrapFor(t, pemKey, "", pkcs8(t, k)), "type": "ecdsa-p256", "allow_rotation": true})
		sig := h.must(200, "POST", "transit/sign/ec", map[string]any{"input": bb64(msg)}).str("signature")
		if !ecdsa.VerifyASN1(&k.PublicKey, digest[:], cipherBody(t, sig, "vault:v1:")) {
			t.Fatal("signature does not verify with the original key")
		}
		// allow_rotation: keyraft may add versions of its own.
		h.must(200, "POST", "transit/keys/ec/rotate", nil)
		if info := h.keyInfo("ec"); num(info, "latest_version") != 2 || info["allow_rotation"] != true {
			t.Fatalf("after rotate: %v", info)
		}
	})

	t.Run("ed25519", func(t *testing.T) {
		h := h.with(t)
		pub, k, _ := ed25519.GenerateKey(rand.Reader)
		h.must(204, "POST", "transit/keys/ed/import", map[string]any{"ciphertext": wrapFor(t, pemKey, "", pkcs8(t, k)), "type": "ed25519"})
		sig := h.must(200, "POST", "transit/sign/ed", map[string]any{"input": bb64(msg)}).str("signature")
		if !ed25519.Verify(pub, msg, cipherBody(t, sig, "vault:v1:")) {
			t.Fatal("signature does not verify with the original key")
		}
	})

	t.Run("hmac", func(t *testing.T) {
		h := h.with(t)
		key := make([]byte, 48)
		rand.Read(key)
		h.must(204, "POST", "transit/keys/mac/import", map[string]any{"ciphertext": wrapFor(t, pemKey, "", key), "type": "hmac"})
		got := h.must(200, "POST", "transit/hmac/mac", map[string]any{"input": bb64(msg)}).str("hmac")
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		if got != "vault:v1:"+bb64(m.Sum(nil)) {
			t.Fatalf("hmac %q is not HMAC-SHA256 under the imported key", got)
		}
		if info := h.keyInfo("mac"); num(info, "key_size") != 48 {
			t.Fatalf("key_size: %v", info["key_size"])
		}
	})
}

// TestBYOKBadInput: every malformed import is a 400 with a reason, writes
// nothing and never echoes the ciphertext.
func TestBYOKBadInput(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	// Before any wrapping key exists, an import cannot have been made for it.
	if r := h.do("POST", "transit/keys/early/import", map[string]any{"ciphertext": bb64(make([]byte, 600))}); r.status != 400 || !strings.Contains(r.raw2(), "no wrapping key") {
		t.Fatalf("import before the wrapping key: %d %s", r.status, r.raw)
	}
	pemKey := h.wrappingPEM()
	other, _ := rsa.GenerateKey(rand.Reader, 4096)
	otherDER, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
	otherPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: otherDER}))
	aes32 := make([]byte, 32)
	rand.Read(aes32)
	good := wrapFor(t, pemKey, "", aes32)
	raw, _ := base64.StdEncoding.DecodeString(good)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h.createKey("made", nil)

	for _, tc := range []struct {
		name, path string
		body       map[string]any
		want       string
	}{
		{"missing ciphertext", "imp1/import", map[string]any{}, "missing ciphertext"},
		{"not base64", "imp1/import", map[string]any{"ciphertext": "%%%"}, "base64"},
		{"wrong wrapping key", "imp1/import", map[string]any{"ciphertext": wrapFor(t, otherPEM, "", aes32)}, "not wrapped with this cluster's wrapping key"},
		{"wrong hash", "imp1/import", map[string]any{"ciphertext": good, "hash_function": "SHA384"}, "hash_function SHA384"},
		{"unknown hash", "imp1/import", map[string]any{"ciphertext": good, "hash_function": "MD5"}, "unknown hash_function"},
		{"truncated to the RSA part", "imp1/import", map[string]any{"ciphertext": bb64(raw[:512])}, "too short"},
		{"truncated KWP", "imp1/import", map[string]any{"ciphertext": bb64(raw[:len(raw)-8])}, "integrity check failed"},
		{"cut inside a semiblock", "imp1/import", map[string]any{"ciphertext": bb64(raw[:len(raw)-3])}, "multiple of 8"},
		{"KWP altered", "imp1/import", map[string]any{"ciphertext": bb64(flipped)}, "integrity check failed"},
		{"wrong size", "imp1/import", map[string]any{"ciphertext": wrapFor(t, pemKey, "", aes32[:16]), "type": "aes256-gcm96"}, "expected 32 raw bytes, got 16"},
		{"wrong type", "imp1/import", map[string]any{"ciphertext": wrapFor(t, pemKey, "", pkcs8(t, ec)), "type": "rsa-2048"}, "got an ECDSA key"},
		{"unknown type", "imp1/import", map[string]any{"ciphertext": good, "type": "aes512"}, "invalid key type"},
		{"convergent", "imp1/import", map[string]any{"ciphertext": good, "derived": true, "convergent_encryption": true}, "convergent"},
		{"auto-rotate without allow_rotation", "imp1/import", map[string]any{"ciphertext": good, "auto_rotate_period": "24h"}, "allow_rotation must be set"},
		{"over a generated key", "made/import", map[string]any{"ciphertext": good}, "cannot be used with an existing key"},
		{"import_version of a generated key", "made/import_version", map[string]any{"ciphertext": good}, "can only be used with an imported key"},
		{"import_version of no key", "nokey/import_version", map[string]any{"ciphertext": good}, "no key found"},
		{"public key only", "imp1/import", map[string]any{"public_key": "x"}, "public key alone"},
	} {
		r := h.do("POST", "transit/keys/"+tc.path, tc.body)
		if r.status != 400 || !strings.Contains(r.raw2(), tc.want) {
			t.Fatalf("%s: %d %s, want 400 with %q", tc.name, r.status, r.raw, tc.want)
		}
		if ct, _ := tc.body["ciphertext"].(string); len(ct) > 16 && strings.Contains(r.raw2(), ct[:16]) {
			t.Fatalf("%s: the error echoes the ciphertext", tc.name)
		}
	}
	if r := h.do("GET", "transit/keys/imp1", nil); r.status != 404 {
		t.Fatalf("a refused import left a key: %d %s", r.status, r.raw)
	}
	// Importing twice under one name: the second is refused.
	h.must(204, "POST", "transit/keys/imp2/import", map[string]any{"ciphertext": good})
	if r := h.do("POST", "transit/keys/imp2/import", map[string]any{"ciphertext": good}); r.status != 400 {
		t.Fatalf("second import: %d %s", r.status, r.raw)
	}
	// The audit log has the ciphertext only as an HMAC.
	for _, ev := range h.audit.all() {
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), good[:32]) {
			t.Fatalf("audit event holds the ciphertext: %s", b)
		}
	}
}

// raw2 is the body as a string.
func (r resp) raw2() string { return string(r.raw) }

// TestBYOKPolicies: import needs update on transit/keys/:name/import and
// the wrapping key read on transit/wrapping_key, like Vault's paths.
func TestBYOKPolicies(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.putPolicy("importer", `path "transit/wrapping_key" { capabilities = ["read"] }
path "transit/keys/app/import" { capabilities = ["update"] }`)
	h.putPolicy("reader", `path "transit/wrapping_key" { capabilities = ["read"] }`)
	imp, rd := h.newToken("importer"), h.newToken("reader")
	r := h.as(rd, "GET", "transit/wrapping_key", nil)
	if r.status != 200 {
		t.Fatalf("read wrapping key: %d %s", r.status, r.raw)
	}
	key := make([]byte, 32)
	ct := wrapFor(t, r.str("public_key"), "", key)
	if r := h.as(rd, "POST", "transit/keys/app/import", map[string]any{"ciphertext": ct}); r.status != 403 {
		t.Fatalf("import without the capability: %d %s", r.status, r.raw)
	}
	if r := h.as(imp, "POST", "transit/keys/other/import", map[string]any{"ciphertext": ct}); r.status != 403 {
		t.Fatalf("import on another key: %d %s", r.status, r.raw)
	}
	if r := h.as(imp, "POST", "transit/keys/app/import", map[string]any{"ciphertext": ct}); r.status != 204 {
		t.Fatalf("import with update: %d %s", r.status, r.raw)
	}
}

// TestWrappingKeyOneForTheCluster: two engines (separate caches, as on
// two nodes) asking for the wrapping key at once agree on one key; a seal
// drops it from memory and the same key comes back after unseal.
func TestWrappingKeyOneForTheCluster(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	engines := []*transit.Engine{transit.New(h.node, nil), transit.New(h.node, nil), h.engine}
	got := make([]string, len(engines))
	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			r, err := e.WrappingKey(ctx)
			if err != nil {
				t.Errorf("engine %d: %v", i, err)
				return
			}
			got[i], _ = r.Data["public_key"].(string)
		}()
	}
	wg.Wait()
	if got[0] == "" || got[0] != got[1] || got[1] != got[2] {
		t.Fatal("concurrent first calls returned different wrapping keys")
	}
	// Seal and unseal: the key is purged from memory and read back the same.
	h.must(204, "PUT", "sys/seal", nil)
	if r := h.doWith("GET", "transit/wrapping_key", nil, map[string]string{"X-Vault-Token": h.token}); r.status != 503 {
		t.Fatalf("wrapping key while sealed: %d %s", r.status, r.raw)
	}
	h.must(200, "PUT", "sys/unseal", map[string]any{"key": bb64(h.unsealKey)})
	if again := h.wrappingPEM(); again != got[0] {
		t.Fatal("the wrapping key changed across a seal")
	}
}

// TestVaultClientBYOK: the unmodified Vault Go client reads the wrapping
// key and imports a key; keyraft then encrypts with it.
func TestVaultClientBYOK(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := vaultClient(t, h.srv.URL, h.token)
	sec, err := c.Logical().Read("transit/wrapping_key")
	if err != nil || sec == nil {
		t.Fatalf("wrapping_key: %v", err)
	}
	pemKey, _ := sec.Data["public_key"].(string)
	key := make([]byte, 32)
	rand.Read(key)
	if _, err := c.Logical().Write("transit/keys/fromclient/import", map[string]any{
		"ciphertext": wrapFor(t, pemKey, "SHA256", key), "type": "aes256-gcm96", "exportable": true,
	}); err != nil {
		t.Fatalf("import: %v", err)
	}
	sec, err = c.Logical().Write("transit/encrypt/fromclient", map[string]any{"plaintext": bb64([]byte("hi"))})
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := sec.Data["ciphertext"].(string)
	body := cipherBody(t, ct, "vault:v1:")
	blk, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(blk)
	if pt, err := g.Open(nil, body[:12], body[12:], nil); err != nil || string(pt) != "hi" {
		t.Fatalf("not encrypted under the imported key: %v", err)
	}
	sec, err = c.Logical().Read("transit/keys/fromclient")
	if err != nil || sec.Data["imported_key"] != true || sec.Data["exportable"] != true {
		t.Fatalf("key info: %v %v", sec, err)
	}
	// A bad import is an error the client reports as a 400.
	_, err = c.Logical().Write("transit/keys/fromclient2/import", map[string]any{"ciphertext": bb64(make([]byte, 100))})
	if re, ok := err.(*vault.ResponseError); !ok || re.StatusCode != 400 {
		t.Fatalf("bad import through the client: %v", err)
	}
}

// vaultEntry is one key version as Vault's keysutil.KeyEntry writes it.
func vaultEntry(extra map[string]any) map[string]any {
	h := make([]byte, 32)
	rand.Read(h)
	now := time.Now().UTC()
	e := map[string]any{"key": nil, "hmac_key": h, "time": now, "ec_x": nil, "ec_y": nil, "ec_d": nil,
		"rsa_key": nil, "rsa_public_key": nil, "public_key": "", "convergent_version": 0,
		"creation_time": now.Unix(), "public_key_imported": false}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

// vaultBackup is base64 of Vault's KeyData JSON for a key of Vault type
// number typ whose versions are entries (version i+1 = entries[i]); the
// policy holds versions from minDecrypt on, the archive all of them.
func vaultBackup(t testing.TB, name string, typ, minDecrypt int, entries []map[string]any, extra map[string]any) string {
	t.Helper()
	keysMap := map[string]any{}
	archive := []any{map[string]any{"key": nil}}
	for i, e := range entries {
		if i+1 >= minDecrypt {
			keysMap[itoa(i+1)] = e
		}
		archive = append(archive, e)
	}
	pol := map[string]any{
		"name": name, "keys": keysMap, "derived": false, "kdf": 1, "convergent_encryption": false,
		"exportable": true, "min_decryption_version": minDecrypt, "min_encryption_version": 0,
		"latest_version": len(entries), "archive_version": len(entries), "archive_min_version": 0,
		"min_available_version": 0, "deletion_allowed": false, "convergent_version": 0, "type": typ,
		"backup_info": map[string]any{"time": time.Now().UTC(), "version": len(entries)}, "restore_info": nil,
		"allow_plaintext_backup": true, "version_template": "", "storage_prefix": "",
		"auto_rotate_period": 0, "Imported": false, "AllowImportedKeyRotation": false,
	}
	for k, v := range extra {
		pol[k] = v
	}
	b, err := json.Marshal(map[string]any{"policy": pol, "archived_keys": map[string]any{"keys": archive}})
	if err != nil {
		t.Fatal(err)
	}
	return bb64(b)
}

// TestRestoreVaultBackup: keys backed up by Vault come back in keyraft
// and keep working with what Vault produced: a Vault AES-GCM ciphertext
// decrypts (also one of an archived version), signatures verify locally,
// HMACs match.
func TestRestoreVaultBackup(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	msg := []byte("migrated from vault")
	digest := sha256.Sum256(msg)

	// aes256-gcm96 (Vault type 0), version 1 archived only.
	k1, k2 := make([]byte, 32), make([]byte, 32)
	rand.Read(k1)
	rand.Read(k2)
	vaultCT := func(key []byte, v string) string {
		blk, _ := aes.NewCipher(key)
		g, _ := cipher.NewGCM(blk)
		nonce := make([]byte, 12)
		rand.Read(nonce)
		return "vault:v" + v + ":" + bb64(g.Seal(nonce, nonce, msg, nil))
	}
	h.must(204, "POST", "transit/restore", map[string]any{"backup": vaultBackup(t, "vaes", 0, 2, []map[string]any{vaultEntry(map[string]any{"key": k1}), vaultEntry(map[string]any{"key": k2})}, nil)})
	info := h.keyInfo("vaes")
	if info["type"] != "aes256-gcm96" || num(info, "latest_version") != 2 || num(info, "min_decryption_version") != 2 {
		t.Fatalf("restored key: %v", info)
	}
	if got := h.must(200, "POST", "transit/decrypt/vaes", map[string]any{"ciphertext": vaultCT(k2, "2")}).str("plaintext"); got != bb64(msg) {
		t.Fatalf("Vault ciphertext: %q", got)
	}
	h.must(200, "POST", "transit/keys/vaes/config", map[string]any{"min_decryption_version": 1})
	if got := h.must(200, "POST", "transit/decrypt/vaes", map[string]any{"ciphertext": vaultCT(k1, "1")}).str("plaintext"); got != bb64(msg) {
		t.Fatalf("Vault ciphertext of the archived version: %q", got)
	}

	// rsa-2048 (3): Go's JSON of rsa.PrivateKey, as Vault stores it.
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	h.must(204, "POST", "transit/restore/vrsa", map[string]any{"backup": vaultBackup(t, "x", 3, 1, []map[string]any{vaultEntry(map[string]any{"rsa_key": rk})}, nil)})
	sig := h.must(200, "POST", "transit/sign/vrsa", map[string]any{"input": bb64(msg), "signature_algorithm": "pkcs1v15"}).str("signature")
	if err := rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, digest[:], cipherBody(t, sig, "vault:v1:")); err != nil {
		t.Fatalf("rsa signature: %v", err)
	}

	// ecdsa-p256 (1): ec_x, ec_y, ec_d.
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h.must(204, "POST", "transit/restore/vec", map[string]any{"backup": vaultBackup(t, "vec", 1, 1, []map[string]any{vaultEntry(map[string]any{"ec_x": ek.X, "ec_y": ek.Y, "ec_d": ek.D})}, nil)})
	sig = h.must(200, "POST", "transit/sign/vec", map[string]any{"input": bb64(msg)}).str("signature")
	if !ecdsa.VerifyASN1(&ek.PublicKey, digest[:], cipherBody(t, sig, "vault:v1:")) {
		t.Fatal("ecdsa signature does not verify")
	}
	// ec_x/ec_y that do not belong to ec_d are refused.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if r := h.do("POST", "transit/restore/vec2", map[string]any{"backup": vaultBackup(t, "vec2", 1, 1, []map[string]any{vaultEntry(map[string]any{"ec_x": other.X, "ec_y": other.Y, "ec_d": ek.D})}, nil)}); r.status != 400 || !strings.Contains(r.raw2(), "do not match") {
		t.Fatalf("mismatched ec point: %d %s", r.status, r.raw)
	}

	// ed25519 (2): the 64-byte private key.
	pub, edk, _ := ed25519.GenerateKey(rand.Reader)
	h.must(204, "POST", "transit/restore/ved", map[string]any{"backup": vaultBackup(t, "ved", 2, 1, []map[string]any{vaultEntry(map[string]any{"key": []byte(edk), "public_key": bb64(pub)})}, nil)})
	sig = h.must(200, "POST", "transit/sign/ved", map[string]any{"input": bb64(msg)}).str("signature")
	if !ed25519.Verify(pub, msg, cipherBody(t, sig, "vault:v1:")) {
		t.Fatal("ed25519 signature does not verify")
	}

	// hmac (11): the key is the entry's key.
	hk := make([]byte, 32)
	rand.Read(hk)
	h.must(204, "POST", "transit/restore/vmac", map[string]any{"backup": vaultBackup(t, "vmac", 11, 1, []map[string]any{vaultEntry(map[string]any{"key": hk})}, map[string]any{"key_size": 32})})
	m := hmac.New(sha256.New, hk)
	m.Write(msg)
	if got := h.must(200, "POST", "transit/hmac/vmac/sha2-256", map[string]any{"input": bb64(msg)}).str("hmac"); got != "vault:v1:"+bb64(m.Sum(nil)) {
		t.Fatalf("hmac: %q", got)
	}

	// An imported Vault key keeps its rotation rule.
	h.must(204, "POST", "transit/restore/vimp", map[string]any{"backup": vaultBackup(t, "vimp", 0, 1, []map[string]any{vaultEntry(map[string]any{"key": k1})}, map[string]any{"Imported": true})})
	if r := h.do("POST", "transit/keys/vimp/rotate", nil); r.status != 400 {
		t.Fatalf("rotate of a restored imported key: %d %s", r.status, r.raw)
	}
	// Restore never replaces without force, and keyraft's own format still works.
	if r := h.do("POST", "transit/restore/vaes", map[string]any{"backup": vaultBackup(t, "vaes", 0, 1, []map[string]any{vaultEntry(map[string]any{"key": k1})}, nil)}); r.status != 400 {
		t.Fatalf("restore over a key: %d %s", r.status, r.raw)
	}
	bk := h.must(200, "GET", "transit/backup/vaes", nil).str("backup")
	h.must(204, "POST", "transit/restore/copy", map[string]any{"backup": bk})
	if r := h.do("POST", "transit/restore/bad", map[string]any{"backup": bb64([]byte(`{"policy":{"keys":{},"type":10,"latest_version":1}}`))}); r.status != 400 || !strings.Contains(r.raw2(), "invalid Vault backup") {
		t.Fatalf("managed key backup: %d %s", r.status, r.raw)
	}
	// Without a name in the path too, the reason reaches the caller.
	conv := vaultBackup(t, "conv", 0, 1, []map[string]any{vaultEntry(map[string]any{"key": k1})}, map[string]any{"derived": true, "convergent_encryption": true})
	if r := h.do("POST", "transit/restore", map[string]any{"backup": conv}); r.status != 400 || !strings.Contains(r.raw2(), "convergent encryption keys cannot be restored") {
		t.Fatalf("convergent Vault backup: %d %s", r.status, r.raw)
	}
}

// byokFuzzPaths are the endpoints of bring-your-own-key.
var byokFuzzPaths = []string{
	"transit/keys/imp/import", "transit/keys/imp/import_version", "transit/restore/imp", "transit/wrapping_key",
}

// FuzzImportBody posts arbitrary bodies to the import, import_version and
// restore endpoints of a real node: every answer is a 2xx or a 4xx with a
// JSON reason, never a 5xx.
func FuzzImportBody(f *testing.F) {
	h := newHarness(f, harnessOpts{maxRequestSize: 1 << 20, discardAudit: true})
	pemKey := h.wrappingPEM()
	good := wrapFor(f, pemKey, "", make([]byte, 32))
	k := make([]byte, 32)
	backup := vaultBackup(f, "v", 0, 1, []map[string]any{vaultEntry(map[string]any{"key": k})}, nil)
	for _, seed := range []string{
		`{"ciphertext":"` + good + `"}`,
		`{"ciphertext":"` + good + `","type":"hmac","hash_function":"sha1","allow_rotation":"true"}`,
		`{"ciphertext":"` + good + `","version":"2"}`,
		`{"backup":"` + backup + `","force":true}`,
		`{"ciphertext":""}`, `{"public_key":"x"}`, `[]`, `{`, `null`, ``,
	} {
		for i := range byokFuzzPaths {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, pathIdx uint8, body []byte) {
		path := byokFuzzPaths[int(pathIdx)%len(byokFuzzPaths)]
		req := httptest.NewRequest("POST", "/v1/"+path, bytes.NewReader(body))
		req.Header.Set("X-Vault-Token", rootToken)
		rec := httptest.NewRecorder()
		h.api.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: status %d %s", path, body, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			var out struct{ Errors []string }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Errors) == 0 {
				t.Fatalf("POST %s: status %d without a reason: %q", path, rec.Code, rec.Body.Bytes())
			}
		}
	})
}
