package conformance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/keyraft/keyraft/plugins/sdk"
)

// OpenCrypto opens a crypto backend for one test; it registers its own
// cleanup with t.
type OpenCrypto func(t *testing.T) sdk.CryptoBackend

// TestCrypto runs the crypto contract checks on every key type the
// backend announces, for the operations it announces.
func TestCrypto(t *testing.T, open OpenCrypto) {
	ctx := context.Background()
	b := open(t)
	caps, err := b.Capabilities(ctx)
	if err != nil {
		t.Fatalf("Capabilities: %v", err)
	}
	if len(caps.KeyTypes) == 0 {
		t.Fatal("Capabilities lists no key type")
	}
	t.Run("UnknownKeyType", func(t *testing.T) {
		if _, err := b.Generate(ctx, "no-such-key-type"); err == nil {
			t.Fatal("Generate of an unknown key type succeeded")
		}
	})
	t.Run("EmptyBatches", func(t *testing.T) { cryptoEmptyBatches(t, b) })
	for _, kt := range caps.KeyTypes {
		t.Run(kt.KeyType, func(t *testing.T) {
			k1, k2 := generate(t, b, caps, kt), generate(t, b, caps, kt)
			if bytes.Equal(k1.Handle, k2.Handle) {
				t.Fatal("two Generate calls returned the same handle")
			}
			r1, r2 := ref(k1), ref(k2)
			if kt.Supports(sdk.OpEncrypt) && kt.Supports(sdk.OpDecrypt) {
				t.Run("EncryptDecrypt", func(t *testing.T) { cryptoEncryptDecrypt(t, b, r1, r2) })
			}
			if kt.Supports(sdk.OpSign) && kt.Supports(sdk.OpVerify) {
				t.Run("SignVerify", func(t *testing.T) { cryptoSignVerify(t, b, k1, r1, r2) })
			}
			if kt.Supports(sdk.OpHMAC) {
				t.Run("HMAC", func(t *testing.T) { cryptoHMAC(t, b, r1, r2) })
			}
			t.Run("UnsupportedOperations", func(t *testing.T) { cryptoUnsupported(t, b, kt, r1) })
			t.Run("Destroy", func(t *testing.T) {
				if err := b.Destroy(ctx, r2); err != nil {
					t.Fatalf("Destroy: %v", err)
				}
			})
		})
	}
}

func generate(t *testing.T, b sdk.CryptoBackend, caps sdk.Capabilities, kt sdk.KeyTypeCapability) sdk.GeneratedKey {
	t.Helper()
	k, err := b.Generate(context.Background(), kt.KeyType)
	if err != nil {
		t.Fatalf("Generate(%s): %v", kt.KeyType, err)
	}
	if len(k.Handle) == 0 {
		t.Fatal("Generate returned no handle")
	}
	if !caps.KeepsMaterial && len(k.Material) == 0 {
		t.Fatal("a backend that keeps no material returned none")
	}
	if kt.Supports(sdk.OpVerify) && len(k.PublicKey) == 0 {
		t.Fatal("Generate of a signing key returned no public key")
	}
	return k
}

func ref(k sdk.GeneratedKey) sdk.KeyRef { return sdk.KeyRef{Handle: k.Handle, Material: k.Material} }

func cryptoEmptyBatches(t *testing.T, b sdk.CryptoBackend) {
	ctx := context.Background()
	if rs, err := b.Encrypt(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty Encrypt: %d results, %v", len(rs), err)
	}
	if rs, err := b.Decrypt(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty Decrypt: %d results, %v", len(rs), err)
	}
	if rs, err := b.Sign(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty Sign: %d results, %v", len(rs), err)
	}
	if rs, err := b.Verify(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty Verify: %d results, %v", len(rs), err)
	}
	if rs, err := b.HMAC(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty HMAC: %d results, %v", len(rs), err)
	}
}

func cryptoEncryptDecrypt(t *testing.T, b sdk.CryptoBackend, k1, k2 sdk.KeyRef) {
	ctx := context.Background()
	big := bytes.Repeat([]byte{0xab}, 1<<20)
	plains := [][]byte{[]byte("hello"), {}, big, []byte("hello")}
	items := make([]sdk.EncryptItem, len(plains))
	for i, p := range plains {
		items[i] = sdk.EncryptItem{Key: k1, Plaintext: p, AssocData: []byte(fmt.Sprint("ctx", i))}
	}
	// One broken item in the batch fails alone.
	items = append(items, sdk.EncryptItem{Key: sdk.KeyRef{Handle: k1.Handle, Material: []byte("garbage")}, Plaintext: []byte("x")})
	enc, err := b.Encrypt(ctx, items)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if len(enc) != len(items) {
		t.Fatalf("Encrypt of %d items returned %d results", len(items), len(enc))
	}
	if enc[len(enc)-1].Err == nil {
		t.Fatal("Encrypt with broken key material succeeded")
	}
	for i := range plains {
		if enc[i].Err != nil {
			t.Fatalf("Encrypt item %d: %v", i, enc[i].Err)
		}
		if bytes.Contains(enc[i].Ciphertext, []byte("hello")) {
			t.Fatalf("ciphertext %d contains the plaintext", i)
		}
	}
	if bytes.Equal(enc[0].Ciphertext, enc[3].Ciphertext) {
		t.Fatal("two encryptions of the same plaintext are equal (nonce reuse?)")
	}
	tampered := bytes.Clone(enc[0].Ciphertext)
	tampered[len(tampered)-1] ^= 1
	dec, err := b.Decrypt(ctx, []sdk.DecryptItem{
		{Key: k1, Ciphertext: enc[0].Ciphertext, AssocData: []byte("ctx0")},
		{Key: k1, Ciphertext: enc[1].Ciphertext, AssocData: []byte("ctx1")},
		{Key: k1, Ciphertext: enc[2].Ciphertext, AssocData: []byte("ctx2")},
		{Key: k1, Ciphertext: enc[0].Ciphertext, AssocData: []byte("other context")},
		{Key: k1, Ciphertext: tampered, AssocData: []byte("ctx0")},
		{Key: k2, Ciphertext: enc[0].Ciphertext, AssocData: []byte("ctx0")},
		{Key: k1, Ciphertext: []byte("short")},
	})
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if len(dec) != 7 {
		t.Fatalf("Decrypt of 7 items returned %d results", len(dec))
	}
	for i, want := range plains[:3] {
		if dec[i].Err != nil || !bytes.Equal(dec[i].Plaintext, want) {
			t.Fatalf("Decrypt item %d: %d bytes, %v", i, len(dec[i].Plaintext), dec[i].Err)
		}
	}
	for i, what := range map[int]string{3: "wrong associated data", 4: "a tampered ciphertext", 5: "the wrong key", 6: "a too short ciphertext"} {
		if dec[i].Err == nil {
			t.Errorf("Decrypt with %s succeeded", what)
		}
	}
}

func cryptoSignVerify(t *testing.T, b sdk.CryptoBackend, gk sdk.GeneratedKey, k1, k2 sdk.KeyRef) {
	ctx := context.Background()
	msgs := [][]byte{[]byte("message"), {}, bytes.Repeat([]byte("m"), 1<<16)}
	items := make([]sdk.SignItem, len(msgs))
	for i, m := range msgs {
		items[i] = sdk.SignItem{Key: k1, Message: m}
	}
	sigs, err := b.Sign(ctx, items)
	if err != nil || len(sigs) != len(items) {
		t.Fatalf("Sign: %d results, %v", len(sigs), err)
	}
	for i, s := range sigs {
		if s.Err != nil {
			t.Fatalf("Sign item %d: %v", i, s.Err)
		}
	}
	if len(gk.PublicKey) == ed25519.PublicKeySize && !ed25519.Verify(gk.PublicKey, msgs[0], sigs[0].Signature) {
		t.Fatal("the signature does not verify with the public key from Generate")
	}
	bad := bytes.Clone(sigs[0].Signature)
	bad[0] ^= 1
	vs, err := b.Verify(ctx, []sdk.VerifyItem{
		{Key: k1, Message: msgs[0], Signature: sigs[0].Signature},
		{Key: k1, Message: msgs[1], Signature: sigs[1].Signature},
		{Key: k1, Message: msgs[2], Signature: sigs[2].Signature},
		{Key: k1, Message: []byte("other"), Signature: sigs[0].Signature},
		{Key: k1, Message: msgs[0], Signature: bad},
		{Key: k2, Message: msgs[0], Signature: sigs[0].Signature},
		{Key: k1, Message: msgs[0], Signature: []byte("short")},
	})
	if err != nil || len(vs) != 7 {
		t.Fatalf("Verify: %d results, %v", len(vs), err)
	}
	for i := 0; i < 3; i++ {
		if vs[i].Err != nil || !vs[i].Valid {
			t.Fatalf("Verify item %d: valid=%v err=%v", i, vs[i].Valid, vs[i].Err)
		}
	}
	for i := 3; i < 7; i++ {
		if vs[i].Valid {
			t.Errorf("Verify item %d (a wrong message, signature or key) is valid", i)
		}
	}
}

func cryptoHMAC(t *testing.T, b sdk.CryptoBackend, k1, k2 sdk.KeyRef) {
	ctx := context.Background()
	rs, err := b.HMAC(ctx, []sdk.HMACItem{
		{Key: k1, Message: []byte("m")},
		{Key: k1, Message: []byte("m")},
		{Key: k1, Message: []byte("n")},
		{Key: k2, Message: []byte("m")},
		{Key: k1, Message: nil},
	})
	if err != nil || len(rs) != 5 {
		t.Fatalf("HMAC: %d results, %v", len(rs), err)
	}
	for i, r := range rs {
		if r.Err != nil || len(r.MAC) < 16 {
			t.Fatalf("HMAC item %d: %d bytes, %v", i, len(r.MAC), r.Err)
		}
	}
	if !bytes.Equal(rs[0].MAC, rs[1].MAC) {
		t.Fatal("HMAC is not deterministic")
	}
	if bytes.Equal(rs[0].MAC, rs[2].MAC) || bytes.Equal(rs[0].MAC, rs[3].MAC) {
		t.Fatal("HMAC of another message or key is the same")
	}
}

func cryptoUnsupported(t *testing.T, b sdk.CryptoBackend, kt sdk.KeyTypeCapability, k sdk.KeyRef) {
	ctx := context.Background()
	check := func(op sdk.Operation, n int, itemErr func(int) error, err error) {
		t.Helper()
		if kt.Supports(op) {
			return
		}
		if err != nil {
			return // refusing the whole call is allowed too
		}
		if n != 1 || itemErr(0) == nil {
			t.Errorf("%s with a %s key succeeded", op, kt.KeyType)
		}
	}
	enc, err := b.Encrypt(ctx, []sdk.EncryptItem{{Key: k, Plaintext: []byte("x")}})
	check(sdk.OpEncrypt, len(enc), func(i int) error { return enc[i].Err }, err)
	dec, err := b.Decrypt(ctx, []sdk.DecryptItem{{Key: k, Ciphertext: bytes.Repeat([]byte{1}, 64)}})
	check(sdk.OpDecrypt, len(dec), func(i int) error { return dec[i].Err }, err)
	sig, err := b.Sign(ctx, []sdk.SignItem{{Key: k, Message: []byte("x")}})
	check(sdk.OpSign, len(sig), func(i int) error { return sig[i].Err }, err)
	ver, err := b.Verify(ctx, []sdk.VerifyItem{{Key: k, Message: []byte("x"), Signature: bytes.Repeat([]byte{1}, 64)}})
	check(sdk.OpVerify, len(ver), func(i int) error { return ver[i].Err }, err)
	mac, err := b.HMAC(ctx, []sdk.HMACItem{{Key: k, Message: []byte("x")}})
	check(sdk.OpHMAC, len(mac), func(i int) error { return mac[i].Err }, err)
}
