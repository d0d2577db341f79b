package keys

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

var (
	signHashes = []string{"", "sha1", "sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-224", "sha3-256", "sha3-384", "sha3-512"}
	hmacAlgs   = []string{"", "sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-224", "sha3-256", "sha3-384", "sha3-512"}
)

// signOptionMatrix lists every option combination that applies to typ.
func signOptionMatrix(typ Type) []SignOptions {
	var out []SignOptions
	switch {
	case typ == Ed25519:
		out = append(out, SignOptions{}, SignOptions{HashAlgorithm: "sha2-512"})
	case typ.isECDSA():
		for _, h := range signHashes {
			for _, m := range []string{"", "asn1", "jws"} {
				out = append(out, SignOptions{HashAlgorithm: h, MarshalingAlgorithm: m})
			}
		}
	case typ.isRSA():
		for _, h := range signHashes {
			for _, salt := range []string{"", "auto", "hash", "20"} {
				out = append(out, SignOptions{HashAlgorithm: h, SignatureAlgorithm: "pss", SaltLength: salt})
			}
			out = append(out, SignOptions{HashAlgorithm: h, SignatureAlgorithm: "pkcs1v15"})
		}
	}
	return out
}

func TestAllTypes(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			h := testHandle(t, Spec{Type: typ}, 1)
			input := []byte("the quick brown fox")

			// Encryption.
			ct, err := h.Encrypt(input, EncryptOptions{})
			if !typ.SupportsEncryption() {
				wantErr(t, err, ErrUnsupported, fmt.Sprintf("key type %s does not support encryption", typ))
				_, err = h.Decrypt(make([]byte, 64), EncryptOptions{})
				wantErr(t, err, ErrUnsupported, fmt.Sprintf("key type %s does not support decryption", typ))
			} else {
				if err != nil {
					t.Fatal(err)
				}
				plaintexts := [][]byte{{}, []byte("x"), input, bytes.Repeat([]byte{0xa5}, 190)}
				if typ.IsAEAD() {
					plaintexts = append(plaintexts, bytes.Repeat([]byte{7}, 70000))
				}
				for _, pt := range plaintexts {
					for _, ad := range [][]byte{nil, []byte("header")} {
						if ad != nil && !typ.IsAEAD() {
							continue
						}
						o := EncryptOptions{AssociatedData: ad, Context: []byte("ignored for non-derived keys")}
						ct, err := h.Encrypt(pt, o)
						if err != nil {
							t.Fatalf("encrypt %d bytes: %v", len(pt), err)
						}
						if !strings.HasPrefix(ct, "vault:v1:") {
							t.Fatalf("ciphertext %q lacks prefix", ct)
						}
						_, body := mustParse(t, ct)
						got, err := h.Decrypt(body, EncryptOptions{AssociatedData: ad})
						if err != nil || !bytes.Equal(got, pt) || got == nil {
							t.Fatalf("decrypt %d bytes: %v (%d bytes back)", len(pt), err, len(got))
						}
					}
				}
				// Random nonces / OAEP padding: the same plaintext encrypts differently.
				ct2, _ := h.Encrypt(input, EncryptOptions{})
				if ct == ct2 {
					t.Error("two encryptions of the same plaintext are identical")
				}
			}

			// Signing.
			if !typ.SupportsSigning() {
				_, err := h.Sign(input, SignOptions{})
				wantErr(t, err, ErrUnsupported, fmt.Sprintf("key type %s does not support signing", typ))
				_, err = h.Verify(input, []byte("sig"), SignOptions{})
				wantErr(t, err, ErrUnsupported, fmt.Sprintf("key type %s does not support verification", typ))
				_, err = h.PublicKey(nil)
				wantErr(t, err, ErrUnsupported, fmt.Sprintf("key type %s has no public key", typ))
			}
			for _, o := range signOptionMatrix(typ) {
				for _, prehashed := range []bool{false, true} {
					if prehashed && typ == Ed25519 {
						continue
					}
					o := o
					o.Prehashed = prehashed
					msg := input
					if prehashed {
						msg, err = Hash(o.HashAlgorithm, input)
						if err != nil {
							t.Fatal(err)
						}
					}
					sig, err := h.Sign(msg, o)
					if err != nil {
						t.Fatalf("sign %+v: %v", o, err)
					}
					if o.MarshalingAlgorithm == "jws" && strings.ContainsAny(sig, "+/=") {
						t.Fatalf("jws signature %q is not unpadded base64url", sig)
					}
					if o.MarshalingAlgorithm != "jws" {
						mustParse(t, sig) // standard base64
					}
					v, body := mustParseSig(t, sig)
					if v != 1 {
						t.Fatalf("signature version %d", v)
					}
					ok, err := h.Verify(msg, body, o)
					if err != nil || !ok {
						t.Fatalf("verify %+v: %v, %v", o, ok, err)
					}
					if o.SignatureAlgorithm == "pss" && o.SaltLength != "" {
						// "auto" verification accepts any salt length.
						auto := o
						auto.SaltLength = "auto"
						if ok, err := h.Verify(msg, body, auto); err != nil || !ok {
							t.Fatalf("verify %+v with salt auto: %v, %v", o, ok, err)
						}
					}
					other := []byte("another message")
					if prehashed {
						other, _ = Hash(o.HashAlgorithm, other)
					}
					if ok, err := h.Verify(other, body, o); err != nil || ok {
						t.Fatalf("verify of other input %+v: %v, %v", o, ok, err)
					}
				}
			}
			if typ.isRSA() {
				// hash_algorithm none: the prehashed input is signed as is.
				o := SignOptions{HashAlgorithm: "none", SignatureAlgorithm: "pkcs1v15", Prehashed: true}
				sig, err := h.Sign(input, o)
				if err != nil {
					t.Fatal(err)
				}
				_, body := mustParseSig(t, sig)
				if ok, err := h.Verify(input, body, o); err != nil || !ok {
					t.Fatalf("verify none: %v %v", ok, err)
				}
				if ok, err := h.Verify([]byte("other"), body, o); err != nil || ok {
					t.Fatalf("verify none of other input: %v %v", ok, err)
				}
				if err := rsa.VerifyPKCS1v15(&h.rsaKey.PublicKey, 0, input, body); err != nil {
					t.Fatalf("stdlib rejects the none signature: %v", err)
				}
			}

			// HMAC works on every type.
			for _, alg := range hmacAlgs {
				mac, err := h.HMAC(input, alg)
				if err != nil {
					t.Fatalf("hmac %q: %v", alg, err)
				}
				_, body := mustParse(t, mac)
				hash, _ := lookupHash(alg)
				if len(body) != hash.Size() {
					t.Fatalf("hmac %q is %d bytes", alg, len(body))
				}
				if ok, err := h.VerifyHMAC(input, body, alg); err != nil || !ok {
					t.Fatalf("verify hmac %q: %v %v", alg, ok, err)
				}
				if ok, err := h.VerifyHMAC([]byte("other"), body, alg); err != nil || ok {
					t.Fatalf("verify hmac of other input %q: %v %v", alg, ok, err)
				}
				if ok, err := h.VerifyHMAC(input, body[:len(body)-1], alg); err != nil || ok {
					t.Fatalf("verify truncated hmac %q: %v %v", alg, ok, err)
				}
			}
		})
	}
}

func TestHMACKnownKey(t *testing.T) {
	// The HMAC uses HMACKey, or Secret for type hmac, and matches the stdlib.
	for _, typ := range []Type{AES256GCM96, Ed25519, RSA2048, HMAC} {
		v := testVersion(t, typ, 1)
		h := testHandle(t, Spec{Type: typ}, 1)
		key := v.HMACKey
		if typ == HMAC {
			key = v.Secret
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte("data"))
		want := FormatCiphertext(1, m.Sum(nil))
		if got, _ := h.HMAC([]byte("data"), "sha2-256"); got != want {
			t.Errorf("%s: hmac %s, want %s", typ, got, want)
		}
		exp, err := h.Export("hmac-key")
		if err != nil || exp != base64.StdEncoding.EncodeToString(key) {
			t.Errorf("%s: export hmac-key: %v", typ, err)
		}
	}
	h := testHandle(t, Spec{Type: AES256GCM96}, 1)
	for _, bad := range []string{"sha1", "none", "md5", "SHA2-256"} {
		_, err := h.HMAC([]byte("x"), bad)
		wantErr(t, err, ErrInvalidInput, fmt.Sprintf("invalid hmac algorithm %q", bad))
		_, err = h.VerifyHMAC([]byte("x"), []byte("y"), bad)
		wantErr(t, err, ErrInvalidInput, "invalid hmac algorithm")
	}
}

func TestTampering(t *testing.T) {
	for _, typ := range []Type{AES128GCM96, AES256GCM96, ChaCha20Poly1305, XChaCha20Poly1305, RSA2048} {
		t.Run(string(typ), func(t *testing.T) {
			h1 := testHandle(t, Spec{Type: typ}, 1)
			h2 := testHandle(t, Spec{Type: typ}, 2)
			pt := []byte("attack at dawn")
			var ad []byte
			if typ.IsAEAD() {
				ad = []byte("aad")
			}
			ct, err := h1.Encrypt(pt, EncryptOptions{AssociatedData: ad})
			if err != nil {
				t.Fatal(err)
			}
			_, body := mustParse(t, ct)
			authMsg := "invalid ciphertext: message authentication failed"
			if typ.isRSA() {
				authMsg = "invalid ciphertext: decryption failed"
			}
			for i := 0; i < len(body); i += 7 {
				for _, bit := range []byte{0x01, 0x80} {
					bad := bytes.Clone(body)
					bad[i] ^= bit
					_, err := h1.Decrypt(bad, EncryptOptions{AssociatedData: ad})
					wantErr(t, err, ErrInvalidCiphertext, authMsg)
					if strings.Contains(err.Error(), string(pt)) {
						t.Fatal("error contains plaintext")
					}
				}
			}
			_, err = h2.Decrypt(body, EncryptOptions{AssociatedData: ad})
			wantErr(t, err, ErrInvalidCiphertext, authMsg)
			_, err = h1.Decrypt(body[:len(body)-1], EncryptOptions{AssociatedData: ad})
			if typ.IsAEAD() {
				wantErr(t, err, ErrInvalidCiphertext, authMsg)
				_, err = h1.Decrypt(body[:len(body)-len(pt)], EncryptOptions{AssociatedData: ad}) // nonce and 16 bytes: an empty message
				wantErr(t, err, ErrInvalidCiphertext, authMsg)
				_, err = h1.Decrypt(body[:h1.aead.NonceSize()+15], EncryptOptions{AssociatedData: ad})
				wantErr(t, err, ErrInvalidCiphertext, "invalid ciphertext: ciphertext too short")
				_, err = h1.Decrypt(nil, EncryptOptions{})
				wantErr(t, err, ErrInvalidCiphertext, "invalid ciphertext: ciphertext too short")
				_, err = h1.Decrypt(body, EncryptOptions{AssociatedData: []byte("aaD")})
				wantErr(t, err, ErrInvalidCiphertext, authMsg)
				_, err = h1.Decrypt(body, EncryptOptions{})
				wantErr(t, err, ErrInvalidCiphertext, authMsg)
			} else {
				wantErr(t, err, ErrInvalidCiphertext, "invalid ciphertext: ciphertext has the wrong length for the key")
				_, err = h1.Encrypt(pt, EncryptOptions{AssociatedData: []byte("x")})
				wantErr(t, err, ErrInvalidInput, "associated_data is only supported by AEAD key types")
				_, err = h1.Decrypt(body, EncryptOptions{AssociatedData: []byte("x")})
				wantErr(t, err, ErrInvalidInput, "associated_data is only supported by AEAD key types")
				_, err = h1.Encrypt(make([]byte, 191), EncryptOptions{})
				wantErr(t, err, ErrInvalidInput, "plaintext too long for key type rsa-2048: at most 190 bytes")
			}
		})
	}
}

func TestSignatureTampering(t *testing.T) {
	for _, typ := range []Type{Ed25519, ECDSAP256, ECDSAP521, RSA2048} {
		h1 := testHandle(t, Spec{Type: typ}, 1)
		h2 := testHandle(t, Spec{Type: typ}, 2)
		for _, o := range []SignOptions{{}, {MarshalingAlgorithm: "jws"}, {SignatureAlgorithm: "pkcs1v15"}} {
			sig, err := h1.Sign([]byte("msg"), o)
			if err != nil {
				t.Fatal(err)
			}
			_, body := mustParseSig(t, sig)
			for _, c := range []struct {
				name  string
				input []byte
				body  []byte
				h     *Handle
			}{
				{"other input", []byte("msh"), body, h1},
				{"other key version", []byte("msg"), body, h2},
				{"flipped bit", []byte("msg"), append(bytes.Clone(body[:len(body)-1]), body[len(body)-1]^1), h1},
				{"truncated", []byte("msg"), body[:len(body)-1], h1},
				{"empty", []byte("msg"), nil, h1},
				{"garbage", []byte("msg"), bytes.Repeat([]byte{0x30}, 200), h1},
			} {
				ok, err := c.h.Verify(c.input, c.body, o)
				if err != nil || ok {
					t.Errorf("%s %+v %s: verify = %v, %v; want false, nil", typ, o, c.name, ok, err)
				}
			}
		}
	}
}

func TestSignOptionErrors(t *testing.T) {
	ed := testHandle(t, Spec{Type: Ed25519}, 1)
	ec := testHandle(t, Spec{Type: ECDSAP256}, 1)
	rs := testHandle(t, Spec{Type: RSA2048}, 1)
	digest := sha256.Sum256([]byte("x"))
	cases := []struct {
		name  string
		h     *Handle
		input []byte
		o     SignOptions
		msg   string
	}{
		{"bad hash", ec, []byte("x"), SignOptions{HashAlgorithm: "md5"}, `invalid hash_algorithm "md5"`},
		{"bad hash ed25519", ed, []byte("x"), SignOptions{HashAlgorithm: "sha256"}, `invalid hash_algorithm "sha256"`},
		{"bad signature algorithm", rs, []byte("x"), SignOptions{SignatureAlgorithm: "raw"}, `invalid signature_algorithm "raw"`},
		{"bad marshaling", ec, []byte("x"), SignOptions{MarshalingAlgorithm: "der"}, `invalid marshaling_algorithm "der"`},
		{"bad salt", rs, []byte("x"), SignOptions{SaltLength: "big"}, `invalid salt_length "big"`},
		{"zero salt", rs, []byte("x"), SignOptions{SaltLength: "0"}, `invalid salt_length "0"`},
		{"negative salt", rs, []byte("x"), SignOptions{SaltLength: "-1"}, `invalid salt_length "-1"`},
		{"signed salt", rs, []byte("x"), SignOptions{SaltLength: "+5"}, `invalid salt_length "+5"`},
		{"salt too big", rs, []byte("x"), SignOptions{SaltLength: "223"}, "invalid salt_length 223: at most 222 for key type rsa-2048 and hash_algorithm sha2-256"},
		{"prehashed wrong length", ec, []byte("short"), SignOptions{Prehashed: true}, "prehashed input must be 32 bytes for hash_algorithm sha2-256, got 5"},
		{"prehashed wrong length rsa", rs, digest[:], SignOptions{Prehashed: true, HashAlgorithm: "sha2-384"}, "prehashed input must be 48 bytes for hash_algorithm sha2-384, got 32"},
		{"none with ecdsa", ec, digest[:], SignOptions{HashAlgorithm: "none", Prehashed: true}, "hash_algorithm none is only supported with rsa keys and signature_algorithm pkcs1v15"},
		{"none with pss", rs, digest[:], SignOptions{HashAlgorithm: "none", Prehashed: true}, "hash_algorithm none is only supported"},
		{"none not prehashed", rs, digest[:], SignOptions{HashAlgorithm: "none", SignatureAlgorithm: "pkcs1v15"}, "hash_algorithm none requires prehashed input"},
		{"none too long", rs, make([]byte, 246), SignOptions{HashAlgorithm: "none", SignatureAlgorithm: "pkcs1v15", Prehashed: true}, "input too long for key type rsa-2048: at most 245 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.h.Sign(c.input, c.o)
			wantErr(t, err, ErrInvalidInput, c.msg)
			_, err = c.h.Verify(c.input, make([]byte, 64), c.o)
			wantErr(t, err, ErrInvalidInput, c.msg)
		})
	}
	// Options that do not apply to the type are ignored.
	if _, err := ed.Sign([]byte("x"), SignOptions{SignatureAlgorithm: "pkcs1v15", MarshalingAlgorithm: "jws", SaltLength: "hash"}); err != nil {
		t.Error(err)
	}
	if _, err := rs.Sign([]byte("x"), SignOptions{MarshalingAlgorithm: "jws"}); err != nil {
		t.Error(err)
	}
	// The largest salt is accepted.
	if _, err := rs.Sign([]byte("x"), SignOptions{SaltLength: "222"}); err != nil {
		t.Error(err)
	}
}

func TestDerived(t *testing.T) {
	for _, typ := range []Type{AES128GCM96, AES256GCM96, ChaCha20Poly1305, XChaCha20Poly1305} {
		t.Run(string(typ), func(t *testing.T) {
			v := testVersion(t, typ, 1)
			h := testHandle(t, Spec{Type: typ, Derived: true}, 1)
			ctxA, ctxB := []byte("tenant-a"), []byte("tenant-b")
			pt := []byte("secret")

			_, err := h.Encrypt(pt, EncryptOptions{})
			wantErr(t, err, ErrInvalidInput, "context is required for a derived key")
			_, err = h.Decrypt(make([]byte, 64), EncryptOptions{})
			wantErr(t, err, ErrInvalidInput, "context is required for a derived key")

			ct, err := h.Encrypt(pt, EncryptOptions{Context: ctxA})
			if err != nil {
				t.Fatal(err)
			}
			_, body := mustParse(t, ct)
			got, err := h.Decrypt(body, EncryptOptions{Context: ctxA})
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("decrypt: %v", err)
			}
			_, err = h.Decrypt(body, EncryptOptions{Context: ctxB})
			wantErr(t, err, ErrInvalidCiphertext, "message authentication failed")

			// The working key is HKDF-SHA256(secret, nil, context).
			dk, _ := hkdf.Key(sha256.New, v.Secret, nil, string(ctxA), len(v.Secret))
			a := stdAEAD(t, typ, dk)
			ns := a.NonceSize()
			got, err = a.Open(nil, body[:ns], body[ns:], nil)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("stdlib decrypt with the HKDF key: %v", err)
			}
			// The base key does not decrypt derived ciphertexts.
			plain := testHandle(t, Spec{Type: typ}, 1)
			_, err = plain.Decrypt(body, EncryptOptions{})
			wantErr(t, err, ErrInvalidCiphertext, "message authentication failed")

			// Not convergent: random nonces.
			ct2, _ := h.Encrypt(pt, EncryptOptions{Context: ctxA})
			if ct == ct2 {
				t.Error("derived non-convergent encryption is deterministic")
			}
		})
	}
}

func TestConvergent(t *testing.T) {
	for _, typ := range []Type{AES128GCM96, AES256GCM96, ChaCha20Poly1305, XChaCha20Poly1305} {
		t.Run(string(typ), func(t *testing.T) {
			spec := Spec{Type: typ, Derived: true, Convergent: true}
			h := testHandle(t, spec, 1)
			h2 := testHandle(t, spec, 1) // another node with the same version
			ctx := []byte("ctx")
			pt := []byte("4111 1111 1111 1111")

			ct1, err := h.Encrypt(pt, EncryptOptions{Context: ctx})
			if err != nil {
				t.Fatal(err)
			}
			ct2, _ := h2.Encrypt(pt, EncryptOptions{Context: ctx})
			if ct1 != ct2 {
				t.Fatal("same plaintext and context gave different ciphertexts")
			}
			if ct3, _ := h.Encrypt(pt, EncryptOptions{Context: []byte("ctx2")}); ct3 == ct1 {
				t.Fatal("different context gave the same ciphertext")
			}
			if ct4, _ := h.Encrypt([]byte("4111 1111 1111 1112"), EncryptOptions{Context: ctx}); ct4 == ct1 {
				t.Fatal("different plaintext gave the same ciphertext")
			}
			ad1, _ := h.Encrypt(pt, EncryptOptions{Context: ctx, AssociatedData: []byte("a")})
			ad2, _ := h.Encrypt(pt, EncryptOptions{Context: ctx, AssociatedData: []byte("b")})
			_, b1 := mustParse(t, ad1)
			_, b2 := mustParse(t, ad2)
			_, b0 := mustParse(t, ct1)
			ns := len(b0) - len(pt) - 16
			if bytes.Equal(b1[:ns], b2[:ns]) || bytes.Equal(b0[:ns], b1[:ns]) {
				t.Fatal("different associated data reused a nonce")
			}
			if again, _ := h.Encrypt(pt, EncryptOptions{Context: ctx, AssociatedData: []byte("a")}); again != ad1 {
				t.Fatal("same plaintext, context and associated data gave different ciphertexts")
			}
			_, err = h.Encrypt(pt, EncryptOptions{})
			wantErr(t, err, ErrInvalidInput, "context is required for a derived key")

			// The nonce is HMAC-SHA256(derived key, len(ad)||ad||plaintext).
			v := testVersion(t, typ, 1)
			dk, _ := hkdf.Key(sha256.New, v.Secret, nil, string(ctx), len(v.Secret))
			m := hmac.New(sha256.New, dk)
			m.Write(binary.BigEndian.AppendUint64(nil, 0))
			m.Write(pt)
			if !bytes.Equal(b0[:ns], m.Sum(nil)[:ns]) {
				t.Fatal("convergent nonce is not the documented HMAC")
			}
			for _, c := range []struct {
				s  string
				ad []byte
			}{{ct1, nil}, {ad1, []byte("a")}} {
				_, body := mustParse(t, c.s)
				got, err := h.Decrypt(body, EncryptOptions{Context: ctx, AssociatedData: c.ad})
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("decrypt: %v", err)
				}
			}
		})
	}
}

func TestDerivedEd25519(t *testing.T) {
	h := testHandle(t, Spec{Type: Ed25519, Derived: true}, 1)
	v := testVersion(t, Ed25519, 1)
	ctx := []byte("user-42")
	_, err := h.Sign([]byte("m"), SignOptions{})
	wantErr(t, err, ErrInvalidInput, "context is required for a derived key")
	_, err = h.PublicKey(nil)
	wantErr(t, err, ErrInvalidInput, "context is required for a derived key")
	_, err = h.Export("public-key")
	wantErr(t, err, ErrInvalidInput, "context is required for a derived key")

	sig, err := h.Sign([]byte("m"), SignOptions{Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	_, body := mustParseSig(t, sig)
	if ok, err := h.Verify([]byte("m"), body, SignOptions{Context: ctx}); !ok || err != nil {
		t.Fatalf("verify: %v %v", ok, err)
	}
	if ok, err := h.Verify([]byte("m"), body, SignOptions{Context: []byte("user-43")}); ok || err != nil {
		t.Fatalf("verify with other context: %v %v", ok, err)
	}
	// The seed is HKDF-SHA256(seed, nil, context); PublicKey matches it.
	seed, _ := hkdf.Key(sha256.New, v.Secret, nil, string(ctx), 32)
	wantPub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	pubStr, err := h.PublicKey(ctx)
	if err != nil || pubStr != base64.StdEncoding.EncodeToString(wantPub) {
		t.Fatalf("PublicKey(ctx) = %q, %v", pubStr, err)
	}
	if !ed25519.Verify(wantPub, []byte("m"), body) {
		t.Fatal("stdlib rejects the derived signature")
	}
	other, _ := h.PublicKey([]byte("user-43"))
	if other == pubStr {
		t.Fatal("two contexts share a public key")
	}
}

func stdAEAD(t *testing.T, typ Type, key []byte) cipher.AEAD {
	t.Helper()
	var a cipher.AEAD
	var err error
	switch typ {
	case AES128GCM96, AES256GCM96:
		var b cipher.Block
		if b, err = aes.NewCipher(key); err == nil {
			a, err = cipher.NewGCM(b)
		}
	case ChaCha20Poly1305:
		a, err = chacha20poly1305.New(key)
	case XChaCha20Poly1305:
		a, err = chacha20poly1305.NewX(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestExportAndInterop(t *testing.T) {
	input := []byte("interop")
	for _, typ := range allTypes {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			h := testHandle(t, Spec{Type: typ}, 1)
			v := testVersion(t, typ, 1)
			exports := map[string]string{}
			for _, kind := range []string{"encryption-key", "signing-key", "hmac-key", "public-key"} {
				s, err := h.Export(kind)
				valid := kind == "hmac-key" ||
					(kind == "encryption-key" && typ.SupportsEncryption()) ||
					((kind == "signing-key" || kind == "public-key") && typ.SupportsSigning())
				if !valid {
					wantErr(t, err, ErrUnsupported, "key type "+string(typ))
					continue
				}
				if err != nil {
					t.Fatalf("export %s: %v", kind, err)
				}
				exports[kind] = s
			}
			_, err := h.Export("private-key")
			wantErr(t, err, ErrInvalidInput, `invalid export type "private-key"`)

			switch {
			case typ.IsAEAD():
				key, err := base64.StdEncoding.DecodeString(exports["encryption-key"])
				if err != nil || !bytes.Equal(key, v.Secret) {
					t.Fatal("encryption-key is not the base64 secret")
				}
				ct, _ := h.Encrypt(input, EncryptOptions{AssociatedData: []byte("ad")})
				_, body := mustParse(t, ct)
				a := stdAEAD(t, typ, key)
				ns := a.NonceSize()
				if ns != map[bool]int{true: 24, false: 12}[typ == XChaCha20Poly1305] {
					t.Fatalf("nonce size %d", ns)
				}
				if len(body) != ns+len(input)+16 {
					t.Fatalf("body is %d bytes", len(body))
				}
				got, err := a.Open(nil, body[:ns], body[ns:], []byte("ad"))
				if err != nil || !bytes.Equal(got, input) {
					t.Fatal("stdlib cannot decrypt nonce||ciphertext||tag")
				}
				// And the other way round.
				nonce := make([]byte, ns)
				rand.Read(nonce)
				got, err = h.Decrypt(a.Seal(nonce, nonce, input, nil), EncryptOptions{})
				if err != nil || !bytes.Equal(got, input) {
					t.Fatalf("decrypt of a stdlib ciphertext: %v", err)
				}

			case typ == Ed25519:
				pub, err := base64.StdEncoding.DecodeString(exports["public-key"])
				if err != nil || len(pub) != 32 {
					t.Fatal("public key is not 32 base64 bytes")
				}
				if p2, _ := h.PublicKey(nil); p2 != exports["public-key"] {
					t.Fatal("PublicKey differs from the public-key export")
				}
				priv, err := base64.StdEncoding.DecodeString(exports["signing-key"])
				if err != nil || len(priv) != 64 || !bytes.Equal(priv[:32], v.Secret) {
					t.Fatal("signing-key is not the 64-byte private key")
				}
				if !bytes.Equal(ed25519.PrivateKey(priv).Public().(ed25519.PublicKey), pub) {
					t.Fatal("signing-key does not match the public key")
				}
				sig, _ := h.Sign(input, SignOptions{HashAlgorithm: "sha2-512"})
				_, body := mustParseSig(t, sig)
				if !ed25519.Verify(pub, input, body) {
					t.Fatal("stdlib rejects the signature")
				}
				if !bytes.Equal(body, ed25519.Sign(priv, input)) {
					t.Fatal("not a pure Ed25519 signature of the input")
				}

			case typ.isECDSA():
				pub := parsePKIX(t, exports["public-key"]).(*ecdsa.PublicKey)
				block := decodePEM(t, exports["signing-key"], "EC PRIVATE KEY")
				priv, err := x509.ParseECPrivateKey(block)
				if err != nil || !priv.PublicKey.Equal(pub) {
					t.Fatalf("signing-key does not match the public key: %v", err)
				}
				for _, hashName := range []string{"sha2-256", "sha2-512", "sha3-384"} {
					d, _ := Hash(hashName, input)
					sig, _ := h.Sign(input, SignOptions{HashAlgorithm: hashName})
					_, body := mustParseSig(t, sig)
					if !ecdsa.VerifyASN1(pub, d, body) {
						t.Fatalf("stdlib rejects the asn1 %s signature", hashName)
					}
					sig, _ = h.Sign(input, SignOptions{HashAlgorithm: hashName, MarshalingAlgorithm: "jws"})
					raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sig, "vault:v1:"))
					n := (pub.Curve.Params().BitSize + 7) / 8
					if err != nil || len(raw) != 2*n {
						t.Fatalf("jws signature is %d bytes: %v", len(raw), err)
					}
					r, s := new(big.Int).SetBytes(raw[:n]), new(big.Int).SetBytes(raw[n:])
					if !ecdsa.Verify(pub, d, r, s) {
						t.Fatalf("stdlib rejects the jws %s signature", hashName)
					}
				}
				// A stdlib signature verifies.
				d := sha256.Sum256(input)
				sig, _ := ecdsa.SignASN1(rand.Reader, priv, d[:])
				if ok, _ := h.Verify(input, sig, SignOptions{}); !ok {
					t.Fatal("stdlib signature does not verify")
				}

			case typ.isRSA():
				pub := parsePKIX(t, exports["public-key"]).(*rsa.PublicKey)
				if exports["signing-key"] != exports["encryption-key"] {
					t.Fatal("rsa signing-key and encryption-key differ")
				}
				priv, err := x509.ParsePKCS1PrivateKey(decodePEM(t, exports["signing-key"], "RSA PRIVATE KEY"))
				if err != nil || !priv.PublicKey.Equal(pub) {
					t.Fatalf("signing-key does not match the public key: %v", err)
				}
				if pub.N.BitLen() != typ.rsaBits() {
					t.Fatalf("modulus is %d bits", pub.N.BitLen())
				}
				d := sha256.Sum256(input)
				sig, _ := h.Sign(input, SignOptions{})
				_, body := mustParseSig(t, sig)
				if err := rsa.VerifyPSS(pub, crypto.SHA256, d[:], body, nil); err != nil {
					t.Fatalf("stdlib rejects the pss signature: %v", err)
				}
				sig, _ = h.Sign(input, SignOptions{SaltLength: "hash"})
				_, body = mustParseSig(t, sig)
				if err := rsa.VerifyPSS(pub, crypto.SHA256, d[:], body, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
					t.Fatalf("stdlib rejects the pss salt=hash signature: %v", err)
				}
				sig, _ = h.Sign(input, SignOptions{SignatureAlgorithm: "pkcs1v15", HashAlgorithm: "sha2-512"})
				_, body = mustParseSig(t, sig)
				d512, _ := Hash("sha2-512", input)
				if err := rsa.VerifyPKCS1v15(pub, crypto.SHA512, d512, body); err != nil {
					t.Fatalf("stdlib rejects the pkcs1v15 signature: %v", err)
				}
				ct, _ := h.Encrypt(input, EncryptOptions{})
				_, body = mustParse(t, ct)
				got, err := rsa.DecryptOAEP(sha256.New(), nil, priv, body, nil)
				if err != nil || !bytes.Equal(got, input) {
					t.Fatalf("stdlib cannot decrypt OAEP-SHA256: %v", err)
				}
				stdCT, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, input, nil)
				got, err = h.Decrypt(stdCT, EncryptOptions{})
				if err != nil || !bytes.Equal(got, input) {
					t.Fatalf("decrypt of a stdlib OAEP ciphertext: %v", err)
				}
			}
		})
	}
}

func parsePKIX(t *testing.T, s string) any {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(decodePEM(t, s, "PUBLIC KEY"))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func decodePEM(t *testing.T, s, typ string) []byte {
	t.Helper()
	b, rest := pem.Decode([]byte(s))
	if b == nil || b.Type != typ || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("not a single PEM %q block: %q", typ, s)
	}
	return b.Bytes
}

func TestHash(t *testing.T) {
	in := []byte("abc")
	s256 := sha256.Sum256(in)
	got, err := Hash("", in)
	if err != nil || !bytes.Equal(got, s256[:]) {
		t.Fatal("default hash is not sha2-256")
	}
	sizes := map[string]int{"sha1": 20, "sha2-224": 28, "sha2-256": 32, "sha2-384": 48, "sha2-512": 64, "sha3-224": 28, "sha3-256": 32, "sha3-384": 48, "sha3-512": 64}
	for name, size := range sizes {
		d, err := Hash(name, in)
		if err != nil || len(d) != size {
			t.Errorf("Hash(%s): %d bytes, %v", name, len(d), err)
		}
	}
	// SHA3-256("abc"), FIPS 202 example.
	if d, _ := Hash("sha3-256", in); fmt.Sprintf("%x", d) != "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532" {
		t.Errorf("sha3-256 = %x", d)
	}
	for _, bad := range []string{"none", "sha256", "md5"} {
		_, err := Hash(bad, in)
		wantErr(t, err, ErrInvalidInput, fmt.Sprintf("invalid hash algorithm %q", bad))
	}
}

func TestConcurrentUseAndZero(t *testing.T) {
	for _, spec := range []Spec{{Type: AES256GCM96}, {Type: ChaCha20Poly1305, Derived: true, Convergent: true}, {Type: Ed25519}, {Type: ECDSAP256}} {
		h := testHandle(t, spec, 1)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					o := EncryptOptions{Context: []byte("c")}
					if spec.Type.IsAEAD() {
						ct, err := h.Encrypt([]byte("p"), o)
						if errors.Is(err, errZeroed) {
							return
						}
						_, body, _ := ParseCiphertext(ct)
						if got, err := h.Decrypt(body, o); err != nil && !errors.Is(err, errZeroed) || err == nil && string(got) != "p" {
							t.Errorf("concurrent decrypt: %v", err)
							return
						}
					} else {
						sig, err := h.Sign([]byte("p"), SignOptions{})
						if errors.Is(err, errZeroed) {
							return
						}
						_, body, _ := ParseSignature(sig)
						if ok, err := h.Verify([]byte("p"), body, SignOptions{}); !ok && !errors.Is(err, errZeroed) {
							t.Errorf("concurrent verify: %v", err)
							return
						}
					}
					h.HMAC([]byte("p"), "")
				}
			}()
		}
		h.Zero()
		wg.Wait()
	}
}

// Pure Ed25519 signs the message itself: prehashed and a hash algorithm
// give the same signature as without (as in Vault, which has no Ed25519ph).
func TestEd25519IgnoresPrehashed(t *testing.T) {
	ed := testHandle(t, Spec{Type: Ed25519}, 1)
	msg := []byte("message")
	plain, err := ed.Sign(msg, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, err := ed.SignBody(msg, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []SignOptions{{Prehashed: true}, {HashAlgorithm: "sha2-256"}, {Prehashed: true, HashAlgorithm: "sha2-512"}} {
		sig, err := ed.Sign(msg, o)
		if err != nil || sig != plain {
			t.Errorf("sign with %+v: %v, same signature %v", o, err, sig == plain)
		}
		if ok, err := ed.Verify(msg, body, o); err != nil || !ok {
			t.Errorf("verify with %+v: %v %v", o, ok, err)
		}
	}
}
