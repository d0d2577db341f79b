package transit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/keys"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKWPVectors: the two examples of RFC 5649 section 6, both ways.
func TestKWPVectors(t *testing.T) {
	kek := unhex(t, "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8")
	for _, tc := range []struct{ key, wrapped string }{
		{"c37b7e6492584340 bed1220780894115 5068f738", "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f"},
	} {
		key, want := unhex(t, tc.key), unhex(t, tc.wrapped)
		got, err := kwpWrap(kek, key)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("wrap %x: got %x, %v; want %x", key, got, err, want)
		}
		back, err := kwpUnwrap(kek, want)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("unwrap %x: got %x, %v", want, back, err)
		}
		// Every altered byte fails the integrity check.
		for i := range want {
			bad := bytes.Clone(want)
			bad[i] ^= 0x01
			if _, err := kwpUnwrap(kek, bad); !errors.Is(err, errKWPIntegrity) {
				t.Fatalf("byte %d altered: %v", i, err)
			}
		}
	}
}

// TestKWPRoundTrip: every length from 1 to 80 bytes comes back, a wrong
// key is caught, bad lengths are refused.
func TestKWPRoundTrip(t *testing.T) {
	kek, other := make([]byte, 32), make([]byte, 32)
	rand.Read(kek)
	rand.Read(other)
	for n := 1; n <= 80; n++ {
		key := make([]byte, n)
		rand.Read(key)
		w, err := kwpWrap(kek, key)
		if err != nil || len(w) != 8+(n+7)/8*8 {
			t.Fatalf("len %d: %d bytes, %v", n, len(w), err)
		}
		if back, err := kwpUnwrap(kek, w); err != nil || !bytes.Equal(back, key) {
			t.Fatalf("len %d: %v", n, err)
		}
		if _, err := kwpUnwrap(other, w); !errors.Is(err, errKWPIntegrity) {
			t.Fatalf("len %d under another key: %v", n, err)
		}
	}
	for _, n := range []int{0, 8, 15, 17, 23} {
		if _, err := kwpUnwrap(kek, make([]byte, n)); err == nil || errors.Is(err, errKWPIntegrity) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	if _, err := kwpWrap(kek, nil); err == nil {
		t.Fatal("empty input wrapped")
	}
}

var (
	testWKOnce sync.Once
	testWK     *rsa.PrivateKey
)

// testWrappingKey is one RSA-4096 key for the tests of this package.
func testWrappingKey(t testing.TB) *rsa.PrivateKey {
	testWKOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, wrappingKeyBits)
		if err != nil {
			panic(err)
		}
		testWK = k
	})
	return testWK
}

// stdWrap wraps key for import with the standard library's RSA-OAEP and
// this package's KWP (checked against the RFC above).
func stdWrap(t testing.TB, pub *rsa.PublicKey, key []byte) []byte {
	t.Helper()
	eph := make([]byte, 32)
	rand.Read(eph)
	we, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, eph, nil)
	if err != nil {
		t.Fatal(err)
	}
	wk, err := kwpWrap(eph, key)
	if err != nil {
		t.Fatal(err)
	}
	return append(we, wk...)
}

// TestImportedVersionShapes: material of each type is accepted in Vault's
// form and refused with a reason otherwise.
func TestImportedVersionShapes(t *testing.T) {
	now := time.Now()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(ed)
	for _, tc := range []struct {
		t        keys.Type
		material []byte
		bad      string // "" = accepted
	}{
		{keys.AES256GCM96, make([]byte, 32), ""},
		{keys.AES256GCM96, make([]byte, 16), "expected 32 raw bytes, got 16"},
		{keys.AES128GCM96, make([]byte, 16), ""},
		{keys.ChaCha20Poly1305, make([]byte, 31), "expected 32 raw bytes"},
		{keys.HMAC, make([]byte, 64), ""},
		{keys.HMAC, make([]byte, 8), "expected 16 to 512 raw bytes"},
		{keys.ECDSAP256, ecDER, ""},
		{keys.ECDSAP384, ecDER, "curve P-256"},
		{keys.Ed25519, edDER, ""},
		{keys.Ed25519, ecDER, "got an ECDSA key on curve P-256"},
		{keys.RSA2048, edDER, "got an ed25519 key"},
		{keys.ECDSAP256, []byte("not der"), "PKCS#8 DER"},
	} {
		v, err := importedVersion(tc.t, 1, now, tc.material)
		if tc.bad == "" {
			if err != nil {
				t.Fatalf("%s: %v", tc.t, err)
			}
			if err := checkMaterial(&Policy{Type: tc.t}, v); err != nil {
				t.Fatalf("%s: material unusable: %v", tc.t, err)
			}
			continue
		}
		if err == nil || !IsUserError(err) || !strings.Contains(err.Error(), tc.bad) {
			t.Fatalf("%s: got %v, want a 400 with %q", tc.t, err, tc.bad)
		}
	}
}

// FuzzImportCiphertext: any import body is imported or refused with a
// 400, never a panic or a server error; nothing of it is echoed.
func FuzzImportCiphertext(f *testing.F) {
	wk := testWrappingKey(f)
	f.Add(stdWrap(f, &wk.PublicKey, make([]byte, 32)), "aes256-gcm96", "SHA256")
	f.Add(stdWrap(f, &wk.PublicKey, []byte("short")), "hmac", "sha1")
	f.Add(make([]byte, 600), "rsa-2048", "SHA512")
	f.Add([]byte{}, "ed25519", "MD5")
	f.Fuzz(func(t *testing.T, ct []byte, typ, hash string) {
		e := New(newMemStore(), nil)
		e.store.(*memStore).Put(fsm.RecordTransitWrappingKey, []byte("{}"))
		// The record does not parse: the test's key is put in the cache.
		e.wrap.key.Get("", 0, func() (uint64, error) { return 1, nil },
			func(uint64) (*parsedWrappingKey, uint64, error) { return &parsedWrappingKey{key: wk}, 1, nil })
		body, _ := json.Marshal(map[string]string{"ciphertext": base64.StdEncoding.EncodeToString(ct), "type": typ, "hash_function": hash})
		in, err := ParseFields(body)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.ImportKey(context.Background(), "k", in)
		if err != nil && !IsUserError(err) {
			t.Fatalf("import error is not a 4xx: %v", err)
		}
		if err != nil && len(ct) > 8 && strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(ct[:8])) {
			t.Fatalf("error echoes the ciphertext: %v", err)
		}
	})
}

// FuzzImportMaterial: unwrapped material of any shape makes a usable
// version or a 400.
func FuzzImportMaterial(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	f.Add(uint8(6), ecDER)
	f.Add(uint8(0), make([]byte, 32))
	f.Add(uint8(11), make([]byte, 40))
	all := []keys.Type{keys.AES128GCM96, keys.AES256GCM96, keys.ChaCha20Poly1305, keys.XChaCha20Poly1305,
		keys.Ed25519, keys.ECDSAP256, keys.ECDSAP384, keys.ECDSAP521, keys.RSA2048, keys.RSA3072, keys.RSA4096, keys.HMAC}
	f.Fuzz(func(t *testing.T, ti uint8, material []byte) {
		typ := all[int(ti)%len(all)]
		v, err := importedVersion(typ, 1, time.Now(), material)
		if err != nil {
			if !IsUserError(err) {
				t.Fatalf("not a 4xx: %v", err)
			}
			return
		}
		if err := checkMaterial(&Policy{Type: typ}, v); err != nil && !IsUserError(err) {
			t.Fatalf("not a 4xx: %v", err)
		}
	})
}

// FuzzKWPUnwrap: unwrap never panics and never returns data for input
// that was not wrapped under the key.
func FuzzKWPUnwrap(f *testing.F) {
	f.Add(make([]byte, 32), make([]byte, 24))
	f.Add(make([]byte, 16), make([]byte, 16))
	f.Fuzz(func(t *testing.T, kek, wrapped []byte) {
		out, err := kwpUnwrap(kek, wrapped)
		if err == nil {
			w, err := kwpWrap(kek, out)
			if err != nil || !bytes.Equal(w, wrapped) {
				t.Fatalf("unwrap accepted input that wrap does not produce")
			}
		}
	})
}

// vaultAESBackup builds a Vault backup of an aes256-gcm96 key with two
// versions, as Vault's keysutil writes it: version 1 only in the archive.
func vaultAESBackup(t testing.TB, k1, k2 []byte) []byte {
	t.Helper()
	entry := func(k []byte) map[string]any {
		h := make([]byte, 32)
		rand.Read(h)
		return map[string]any{"key": k, "hmac_key": h, "time": time.Now().UTC(), "ec_x": nil, "ec_y": nil, "ec_d": nil,
			"rsa_key": nil, "rsa_public_key": nil, "public_key": "", "convergent_version": 0, "creation_time": time.Now().Unix()}
	}
	e1, e2 := entry(k1), entry(k2)
	doc := map[string]any{
		"policy": map[string]any{
			"name": "fromvault", "keys": map[string]any{"2": e2}, "derived": false, "kdf": 1,
			"convergent_encryption": false, "exportable": true, "min_decryption_version": 2,
			"min_encryption_version": 0, "latest_version": 2, "archive_version": 2, "archive_min_version": 0,
			"min_available_version": 0, "deletion_allowed": false, "convergent_version": 0, "type": 0,
			"backup_info": map[string]any{"time": time.Now().UTC(), "version": 2}, "restore_info": nil,
			"allow_plaintext_backup": true, "version_template": "", "storage_prefix": "", "auto_rotate_period": 0,
			"Imported": false, "AllowImportedKeyRotation": false, "public_key_imported": nil,
		},
		"archived_keys": map[string]any{"keys": []any{map[string]any{"key": nil}, e1, e2}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vaultEncrypt encrypts the way Vault's transit does for a non-derived
// AES-GCM key: vault:v<N>:base64(nonce ‖ ciphertext ‖ tag).
func vaultEncrypt(t testing.TB, key []byte, version string, plaintext []byte) string {
	t.Helper()
	b, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(b)
	nonce := make([]byte, g.NonceSize())
	rand.Read(nonce)
	return "vault:v" + version + ":" + base64.StdEncoding.EncodeToString(g.Seal(nonce, nonce, plaintext, nil))
}

// TestVaultBackupDecode: the versions come from the policy and the
// archive; unsupported settings are refused with a reason.
func TestVaultBackupDecode(t *testing.T) {
	k1, k2 := make([]byte, 32), make([]byte, 32)
	rand.Read(k1)
	rand.Read(k2)
	raw := vaultAESBackup(t, k1, k2)
	p, err := decodeVaultBackup(raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != keys.AES256GCM96 || p.LatestVersion != 2 || p.MinDecryptionVersion != 2 || !p.Exportable ||
		!bytes.Equal(p.Versions[1].Secret, k1) || !bytes.Equal(p.Versions[2].Secret, k2) || len(p.Versions[2].HMACKey) != 32 {
		t.Fatalf("decoded: %+v", p)
	}
	if err := p.validate(); err != nil {
		t.Fatal(err)
	}
	change := func(f func(pol map[string]any, doc map[string]any)) []byte {
		var doc map[string]any
		json.Unmarshal(raw, &doc)
		f(doc["policy"].(map[string]any), doc)
		b, _ := json.Marshal(doc)
		return b
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"managed key", change(func(p, _ map[string]any) { p["type"] = 10 }), "Vault managed keys"},
		{"named managed key", change(func(p, _ map[string]any) { p["type"], p["key_size"], p["managed_key_name"] = 10, 32, "hsm" }), "managed keys"},
		{"OpenBao external key", change(func(p, _ map[string]any) { p["type"] = 10000 }), "OpenBao external keys"},
		{"newer type", change(func(p, _ map[string]any) { p["type"] = 12 }), "type 12 is not supported"},
		{"convergent", change(func(p, _ map[string]any) { p["convergent_encryption"] = true; p["derived"] = true }), "convergent"},
		{"legacy kdf", change(func(p, _ map[string]any) { p["derived"] = true; p["kdf"] = 0 }), "legacy kdf"},
		{"version missing", change(func(_, d map[string]any) { delete(d, "archived_keys") }), "version 1 is neither"},
		{"short key", change(func(p, _ map[string]any) {
			p["keys"].(map[string]any)["2"].(map[string]any)["key"] = base64.StdEncoding.EncodeToString(make([]byte, 5))
		}), "not a valid aes256-gcm96 key"},
		{"template", change(func(p, _ map[string]any) { p["version_template"] = "x:{{version}}:" }), "version_template"},
		{"huge number", change(func(p, _ map[string]any) {
			p["keys"].(map[string]any)["2"].(map[string]any)["ec_d"] = json.Number(strings.Repeat("9", 5000))
		}), "longer than any key"},
	} {
		_, err := decodeVaultBackup(tc.raw, time.Now())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	// From 10 on, HashiCorp Vault and OpenBao number types differently;
	// key_size (set on every hmac key of both) tells them apart.
	for _, tc := range []struct {
		typ, keySize int
		want         keys.Type
	}{{10, 32, keys.HMAC}, {11, 32, keys.HMAC}, {11, 0, keys.XChaCha20Poly1305}} {
		p, err := decodeVaultBackup(change(func(p, _ map[string]any) { p["type"], p["key_size"] = tc.typ, tc.keySize }), time.Now())
		if err != nil || p.Type != tc.want {
			t.Fatalf("type %d, key_size %d: %v, want %s", tc.typ, tc.keySize, err, tc.want)
		}
	}
	if _, err := decodeVaultBackup([]byte(`{"policy":{"name":"x"}}`), time.Now()); !errors.Is(err, errNotVaultBackup) {
		t.Fatalf("not a Vault backup: %v", err)
	}
}

// FuzzVaultBackup: any backup text is restored or refused with a 400.
func FuzzVaultBackup(f *testing.F) {
	k := make([]byte, 32)
	f.Add(vaultAESBackup(f, k, k))
	// No RSA seed: with coverage instrumentation, math/big makes each RSA
	// validation take seconds and the fuzzer would crawl. RSA backups are
	// covered by transport's TestRestoreVaultBackup.
	f.Add([]byte(`{"policy":{"name":"r","type":3,"latest_version":1,"min_decryption_version":1,"keys":{"1":{"rsa_key":{"N":1,"E":3,"D":1,"Primes":[1,1]}}}}}`))
	f.Add([]byte(`{"policy":{"name":"e","type":1,"latest_version":1,"min_decryption_version":1,"keys":{"1":{"ec_d":5,"ec_x":1,"ec_y":2}}}}`))
	f.Add([]byte(`{"policy":{"name":"d","type":2,"latest_version":1,"keys":{"1":{"key":"AAAA"}}}}`))
	f.Add([]byte(`{"policy":{"name":"n","type":null,"latest_version":1,"keys":{}}}`))
	// OpenBao's numbering: hmac at 10 (with key_size), xchacha20 at 11.
	f.Add([]byte(`{"policy":{"name":"h","type":10,"key_size":32,"latest_version":1,"min_decryption_version":1,"keys":{"1":{"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","hmac_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}}`))
	f.Add([]byte(`{"policy":{"name":"x","type":11,"latest_version":1,"min_decryption_version":1,"keys":{"1":{"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}}`))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		e := New(newMemStore(), nil)
		body, _ := json.Marshal(map[string]string{"backup": base64.StdEncoding.EncodeToString(b)})
		in, err := ParseFields(body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Restore(ctx, "", in); err != nil && !IsUserError(err) {
			t.Fatalf("restore error is not a 4xx: %v", err)
		}
	})
}

// TestImportOpenSSLInterop: a ciphertext made by OpenSSL following the
// recipe in docs/byok.md (an implementation of RSA-OAEP and AES-KWP
// independent of this package) unwraps to the key. Skipped without openssl.
func TestImportOpenSSLInterop(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	wk := testWrappingKey(t)
	dir := t.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(&wk.PublicKey)
	os.WriteFile(filepath.Join(dir, "wrap.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	eph, key := make([]byte, 32), make([]byte, 45) // 45: KWP pads it
	rand.Read(eph)
	rand.Read(key)
	os.WriteFile(filepath.Join(dir, "eph.key"), eph, 0o600)
	os.WriteFile(filepath.Join(dir, "key.bin"), key, 0o600)
	sh := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	sh("pkeyutl", "-encrypt", "-pubin", "-inkey", "wrap.pem", "-in", "eph.key", "-out", "eph.wrapped",
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256")
	sh("enc", "-id-aes256-wrap-pad", "-iv", "A65959A6", "-K", hex.EncodeToString(eph), "-in", "key.bin", "-out", "key.wrapped")
	a, _ := os.ReadFile(filepath.Join(dir, "eph.wrapped"))
	b, _ := os.ReadFile(filepath.Join(dir, "key.wrapped"))
	got, err := unwrapImportCiphertext(wk, crypto.SHA256, append(a, b...))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("OpenSSL's ciphertext: %v", err)
	}
	// And OpenSSL unwraps what kwpWrap makes.
	w, _ := kwpWrap(eph, key)
	os.WriteFile(filepath.Join(dir, "ours.wrapped"), w, 0o600)
	sh("enc", "-d", "-id-aes256-wrap-pad", "-iv", "A65959A6", "-K", hex.EncodeToString(eph), "-in", "ours.wrapped", "-out", "ours.bin")
	if back, _ := os.ReadFile(filepath.Join(dir, "ours.bin")); !bytes.Equal(back, key) {
		t.Fatal("OpenSSL does not unwrap kwpWrap's output to the key")
	}
}

// TestImportedKeysAndRotation: an imported key without allow_rotation is
// skipped by the leader's auto-rotation (not an error of the pass), cannot
// be given an auto_rotate_period, and rotates once allowed.
func TestImportedKeysAndRotation(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	k := make([]byte, 32)
	for _, tc := range []struct {
		name  string
		allow bool
	}{{"fixed", false}, {"free", true}} {
		var doc map[string]any
		json.Unmarshal(vaultAESBackup(t, k, k), &doc)
		pol := doc["policy"].(map[string]any)
		pol["Imported"], pol["AllowImportedKeyRotation"], pol["auto_rotate_period"] = true, tc.allow, int64(time.Hour)
		raw, _ := json.Marshal(doc)
		in, _ := ParseFields([]byte(`{"backup":"` + base64.StdEncoding.EncodeToString(raw) + `"}`))
		if _, err := e.Restore(ctx, tc.name, in); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	e.Now = func() time.Time { return start.Add(2 * time.Hour) }
	n, err := e.RotateDue(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RotateDue: %d rotated, %v; want only the key that allows it", n, err)
	}
	if l, _ := e.get("fixed"); l.policy.LatestVersion != 2 {
		t.Fatalf("fixed key has %d versions, want 2 (untouched)", l.policy.LatestVersion)
	}
	if l, _ := e.get("free"); l.policy.LatestVersion != 3 {
		t.Fatalf("free key has %d versions, want 3", l.policy.LatestVersion)
	}
	if _, err := e.RotateKey(ctx, "fixed"); err == nil || !IsUserError(err) {
		t.Fatalf("manual rotate of the fixed key: %v", err)
	}
	in, _ := ParseFields([]byte(`{"auto_rotate_period":"48h"}`))
	if _, err := e.ConfigKey(ctx, "fixed", in); err == nil || !strings.Contains(err.Error(), "does not allow rotation") {
		t.Fatalf("auto_rotate_period on the fixed key: %v", err)
	}
}

// TestImportedKeyOtherConfig: other settings of such a key still change.
func TestImportedKeyOtherConfig(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	k := make([]byte, 32)
	var doc map[string]any
	json.Unmarshal(vaultAESBackup(t, k, k), &doc)
	pol := doc["policy"].(map[string]any)
	pol["Imported"], pol["auto_rotate_period"] = true, int64(time.Hour)
	raw, _ := json.Marshal(doc)
	in, _ := ParseFields([]byte(`{"backup":"` + base64.StdEncoding.EncodeToString(raw) + `"}`))
	if _, err := e.Restore(ctx, "k", in); err != nil {
		t.Fatal(err)
	}
	in, _ = ParseFields([]byte(`{"min_decryption_version":1,"auto_rotate_period":0}`))
	if _, err := e.ConfigKey(ctx, "k", in); err != nil {
		t.Fatalf("config of an imported key: %v", err)
	}
}

// FuzzWrappingRecord: a stored wrapping-key record of any shape gives the
// key or an error, never a panic.
func FuzzWrappingRecord(f *testing.F) {
	der, _ := x509.MarshalPKCS8PrivateKey(testWrappingKey(f))
	good, _ := json.Marshal(wrappingRecord{PKCS8: der, CreationTime: time.Now()})
	f.Add(good)
	f.Add([]byte(`{"pkcs8":"AAAA"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		s := newMemStore()
		s.Put(fsm.RecordTransitWrappingKey, rec)
		e := New(s, nil)
		k, pemKey, err := e.wrappingKey(context.Background())
		if err == nil && (k == nil || pemKey == "") {
			t.Fatal("no error and no key")
		}
	})
}

// TestVaultBackupTrimmedArchive: after a trim in Vault, the archive
// starts at min_available_version.
func TestVaultBackupTrimmedArchive(t *testing.T) {
	k2, k3 := make([]byte, 32), make([]byte, 32)
	rand.Read(k2)
	rand.Read(k3)
	raw, _ := json.Marshal(map[string]any{
		"policy": map[string]any{"name": "t", "type": 0, "latest_version": 3, "min_available_version": 2,
			"min_decryption_version": 3, "archive_min_version": 2, "archive_version": 3,
			"keys": map[string]any{"3": map[string]any{"key": k3}}},
		"archived_keys": map[string]any{"keys": []any{map[string]any{"key": k2}, map[string]any{"key": k3}}},
	})
	p, err := decodeVaultBackup(raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Versions) != 2 || !bytes.Equal(p.Versions[2].Secret, k2) || !bytes.Equal(p.Versions[3].Secret, k3) {
		t.Fatalf("versions: %v", p.Versions)
	}
	if err := p.validate(); err != nil {
		t.Fatal(err)
	}
}

// A backup that does not decode is refused without quoting any of its
// values: the error goes into the response and into the audit event, and
// a malformed field can hold key material.
func TestBackupDecodeErrorsQuoteNoValue(t *testing.T) {
	const secret = "SECRETc2VjcmV0IGtleSBtYXRlcmlhbA"
	k := make([]byte, 32)
	raw := vaultAESBackup(t, k, k)
	change := func(f func(entry map[string]any)) []byte {
		var doc map[string]any
		json.Unmarshal(raw, &doc)
		f(doc["policy"].(map[string]any)["keys"].(map[string]any)["2"].(map[string]any))
		b, _ := json.Marshal(doc)
		return b
	}
	e := New(newMemStore(), nil)
	for name, bad := range map[string][]byte{
		"ec_d string":  change(func(m map[string]any) { m["ec_d"] = secret }),
		"rsa D string": change(func(m map[string]any) { m["rsa_key"] = map[string]any{"D": secret} }),
		"time":         change(func(m map[string]any) { m["time"] = secret }),
		"key":          change(func(m map[string]any) { m["key"] = secret + "!" }),
		"key number":   change(func(m map[string]any) { m["key"] = 12345678901234 }),
		"hmac_key obj": change(func(m map[string]any) { m["hmac_key"] = map[string]any{secret: 1} }),
	} {
		_, derr := decodeVaultBackup(bad, time.Now())
		_, rerr := e.Restore(context.Background(), "k", fields(t, `{"backup":"`+base64.StdEncoding.EncodeToString(bad)+`"}`))
		for _, err := range []error{derr, rerr} {
			if err == nil {
				t.Fatalf("%s: accepted", name)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "12345678901234") {
				t.Fatalf("%s: the error quotes a value: %v", name, err)
			}
		}
		if !IsUserError(rerr) {
			t.Fatalf("%s: restore error is not a 400: %v", name, rerr)
		}
	}
}

// Restores and imports are bounded before the expensive work: the
// versions of a backup (keyraft's or Vault's), its size, the size of
// PKCS#8 material before it is parsed, and a Vault version's hmac_key.
func TestRestoreAndImportBounds(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	restore := func(doc []byte) error {
		_, err := e.Restore(ctx, "k", fields(t, `{"backup":"`+base64.StdEncoding.EncodeToString(doc)+`"}`))
		return err
	}
	// keyraft's format with one version too many.
	vs := map[string]any{}
	for n := 1; n <= maxBackupVersions+1; n++ {
		vs[strconv.Itoa(n)] = map[string]any{"version": n, "creation_time": time.Now().UTC(), "secret": make([]byte, 32), "hmac_key": make([]byte, 32)}
	}
	doc, _ := json.Marshal(map[string]any{"keyraft_transit_backup": 1, "policy": map[string]any{
		"name": "k", "type": "aes256-gcm96", "latest_version": maxBackupVersions + 1, "min_decryption_version": 1, "versions": vs}})
	if err := restore(doc); !IsUserError(err) || !strings.Contains(err.Error(), "more than the 4096") {
		t.Fatalf("keyraft backup of %d versions: %v", maxBackupVersions+1, err)
	}
	// Vault's format: the count comes from latest and min_available.
	k := make([]byte, 32)
	var vd map[string]any
	json.Unmarshal(vaultAESBackup(t, k, k), &vd)
	vd["policy"].(map[string]any)["latest_version"] = maxBackupVersions + 1
	doc, _ = json.Marshal(vd)
	if _, err := decodeVaultBackup(doc, time.Now()); err == nil || !strings.Contains(err.Error(), "more than the 4096") {
		t.Fatalf("Vault backup of %d versions: %v", maxBackupVersions+1, err)
	}
	// A Vault hmac_key of another size than 32 bytes.
	json.Unmarshal(vaultAESBackup(t, k, k), &vd)
	vd["policy"].(map[string]any)["keys"].(map[string]any)["2"].(map[string]any)["hmac_key"] = make([]byte, 4096)
	doc, _ = json.Marshal(vd)
	if _, err := decodeVaultBackup(doc, time.Now()); err == nil || !strings.Contains(err.Error(), "hmac_key must be 32 bytes") {
		t.Fatalf("Vault hmac_key of 4096 bytes: %v", err)
	}
	// A backup larger than any key may be.
	big := make([]byte, maxBackupBytes+1)
	if _, err := BackupKeyName(big, time.Now()); err != nil {
		t.Fatalf("BackupKeyName of an oversized backup: %v", err)
	}
	if err := restore(big); !IsUserError(err) || !strings.Contains(err.Error(), "more than the") {
		t.Fatalf("oversized backup: %v", err)
	}
	// PKCS#8 material longer than an RSA-8192 key is refused unparsed.
	_, err := importedVersion(keys.RSA4096, 1, time.Now(), make([]byte, maxPKCS8Len+1))
	if !IsUserError(err) || !strings.Contains(err.Error(), "at most 5120 bytes") {
		t.Fatalf("oversized PKCS#8: %v", err)
	}
}
