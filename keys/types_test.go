package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseType(t *testing.T) {
	for _, typ := range allTypes {
		got, err := ParseType(string(typ))
		if err != nil || got != typ {
			t.Errorf("ParseType(%q) = %q, %v", typ, got, err)
		}
	}
	for _, bad := range []string{"", "AES256-GCM96", "aes256", "rsa-1024", "hmac ", "ecdsa-p224"} {
		_, err := ParseType(bad)
		wantErr(t, err, ErrInvalidInput, `invalid key type "`+bad+`"`)
		for _, typ := range allTypes {
			if !strings.Contains(err.Error(), string(typ)) {
				t.Errorf("error %q does not list %s", err, typ)
			}
		}
	}
}

func TestTypeCapabilities(t *testing.T) {
	type caps struct{ aead, asym, enc, sign, derive bool }
	want := map[Type]caps{
		AES128GCM96:       {aead: true, enc: true, derive: true},
		AES256GCM96:       {aead: true, enc: true, derive: true},
		ChaCha20Poly1305:  {aead: true, enc: true, derive: true},
		XChaCha20Poly1305: {aead: true, enc: true, derive: true},
		Ed25519:           {asym: true, sign: true, derive: true},
		ECDSAP256:         {asym: true, sign: true},
		ECDSAP384:         {asym: true, sign: true},
		ECDSAP521:         {asym: true, sign: true},
		RSA2048:           {asym: true, enc: true, sign: true},
		RSA3072:           {asym: true, enc: true, sign: true},
		RSA4096:           {asym: true, enc: true, sign: true},
		HMAC:              {},
		Type("bogus"):     {},
	}
	for typ, w := range want {
		got := caps{typ.IsAEAD(), typ.IsAsymmetric(), typ.SupportsEncryption(), typ.SupportsSigning(), typ.SupportsDerivation()}
		if got != w {
			t.Errorf("%s: capabilities %+v, want %+v", typ, got, w)
		}
		if typ.SupportsDecryption() != typ.SupportsEncryption() {
			t.Errorf("%s: decryption support differs from encryption support", typ)
		}
	}
}

func TestGenerateVersion(t *testing.T) {
	for _, typ := range allTypes {
		v := testVersion(t, typ, 1)
		if v.Version != 1 || !v.CreationTime.Equal(testNow) {
			t.Errorf("%s: version %d time %v", typ, v.Version, v.CreationTime)
		}
		if len(v.HMACKey) != 32 {
			t.Errorf("%s: hmac key is %d bytes", typ, len(v.HMACKey))
		}
		wantLen := map[Type]int{AES128GCM96: 16, AES256GCM96: 32, ChaCha20Poly1305: 32, XChaCha20Poly1305: 32, Ed25519: 32, HMAC: 32}
		if n, ok := wantLen[typ]; ok && len(v.Secret) != n {
			t.Errorf("%s: secret is %d bytes, want %d", typ, len(v.Secret), n)
		}
		if bytes.Equal(v.Secret, testVersion(t, typ, 2).Secret) {
			t.Errorf("%s: two versions have the same secret", typ)
		}
		// The JSON form (what the caller stores under the barrier) round-trips.
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back Version
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		if back.Version != v.Version || !back.CreationTime.Equal(v.CreationTime) || !bytes.Equal(back.Secret, v.Secret) || !bytes.Equal(back.HMACKey, v.HMACKey) {
			t.Errorf("%s: JSON round trip changed the version", typ)
		}
		if _, err := NewHandle(Spec{Type: typ}, &back); err != nil {
			t.Errorf("%s: NewHandle after JSON round trip: %v", typ, err)
		}
	}

	for _, size := range []int{16, 17, 64, 512} {
		v, err := GenerateVersion(HMAC, 1, testNow, size)
		if err != nil || len(v.Secret) != size {
			t.Errorf("hmac key_size %d: %v, %d bytes", size, err, len(v.Secret))
		}
	}
	for _, size := range []int{-1, 1, 15, 513} {
		_, err := GenerateVersion(HMAC, 1, testNow, size)
		wantErr(t, err, ErrInvalidInput, "invalid key_size")
	}
	_, err := GenerateVersion(AES256GCM96, 1, testNow, 32)
	wantErr(t, err, ErrInvalidInput, "key_size is only valid for hmac keys")
	_, err = GenerateVersion(AES256GCM96, 0, testNow, 0)
	wantErr(t, err, ErrInvalidInput, "invalid key version 0")
	_, err = GenerateVersion("des", 1, testNow, 0)
	wantErr(t, err, ErrInvalidInput, `invalid key type "des"`)
}

func TestVersionZero(t *testing.T) {
	v := testVersion(t, AES256GCM96, 1)
	h, err := NewHandle(Spec{Type: AES256GCM96}, v)
	if err != nil {
		t.Fatal(err)
	}
	v.Zero()
	if !bytes.Equal(v.Secret, make([]byte, 32)) || !bytes.Equal(v.HMACKey, make([]byte, 32)) {
		t.Fatal("Version.Zero left material")
	}
	// The handle has its own copy.
	ct, err := h.Encrypt([]byte("x"), EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, body := mustParse(t, ct); body == nil {
		t.Fatal("empty body")
	}
	(*Version)(nil).Zero() // no panic
}

func TestNewHandleRejects(t *testing.T) {
	good := testVersion(t, ECDSAP256, 1)
	cases := []struct {
		name string
		spec Spec
		v    *Version
		msg  string
	}{
		{"nil version", Spec{Type: AES256GCM96}, nil, "missing key version"},
		{"unknown type", Spec{Type: "x"}, good, `invalid key type "x"`},
		{"version 0", Spec{Type: AES256GCM96}, &Version{Secret: make([]byte, 32)}, "invalid key version 0"},
		{"derived ecdsa", Spec{Type: ECDSAP256, Derived: true}, good, "key type ecdsa-p256 does not support derivation"},
		{"derived hmac", Spec{Type: HMAC, Derived: true}, testVersion(t, HMAC, 1), "key type hmac does not support derivation"},
		{"convergent not derived", Spec{Type: AES256GCM96, Convergent: true}, testVersion(t, AES256GCM96, 1), "convergent encryption requires a derived key"},
		{"convergent ed25519", Spec{Type: Ed25519, Derived: true, Convergent: true}, testVersion(t, Ed25519, 1), "does not support convergent encryption"},
		{"short aes key", Spec{Type: AES256GCM96}, &Version{Version: 1, Secret: make([]byte, 16)}, "material is not a valid aes256-gcm96 key"},
		{"wrong curve", Spec{Type: ECDSAP384}, good, "material is not a valid ecdsa-p384 key"},
		{"rsa size", Spec{Type: RSA3072}, testVersion(t, RSA2048, 1), "material is not a valid rsa-3072 key"},
		{"ecdsa as rsa", Spec{Type: RSA2048}, good, "material is not a valid rsa-2048 key"},
		{"garbage der", Spec{Type: ECDSAP256}, &Version{Version: 1, Secret: []byte("nope")}, "material is not a valid"},
		{"short hmac", Spec{Type: HMAC}, &Version{Version: 1, Secret: make([]byte, 8)}, "material is not a valid hmac key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := NewHandle(c.spec, c.v)
			if h != nil {
				t.Error("got a handle")
			}
			wantErr(t, err, ErrInvalidInput, c.msg)
		})
	}
}

func TestHandleZero(t *testing.T) {
	for _, typ := range allTypes {
		h := testHandle(t, Spec{Type: typ}, 1)
		h.Zero()
		h.Zero() // idempotent
		if h.Version() != 1 {
			t.Errorf("%s: version lost", typ)
		}
		checks := map[string]error{}
		_, checks["encrypt"] = h.Encrypt([]byte("x"), EncryptOptions{})
		_, checks["decrypt"] = h.Decrypt(make([]byte, 64), EncryptOptions{})
		_, checks["sign"] = h.Sign([]byte("x"), SignOptions{})
		_, checks["verify"] = h.Verify([]byte("x"), []byte("y"), SignOptions{})
		_, checks["hmac"] = h.HMAC([]byte("x"), "")
		_, checks["verifyhmac"] = h.VerifyHMAC([]byte("x"), []byte("y"), "")
		_, checks["public"] = h.PublicKey(nil)
		_, checks["export"] = h.Export("hmac-key")
		for op, err := range checks {
			if !errors.Is(err, errZeroed) {
				t.Errorf("%s %s after Zero: %v", typ, op, err)
			}
		}
	}
}
