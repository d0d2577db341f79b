package transit

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// BenchmarkImportUnwrap: the server's cost of one import ciphertext
// (RSA-OAEP-SHA256 decryption with the 4096-bit key, then AES-KWP).
func BenchmarkImportUnwrap(b *testing.B) {
	wk := testWrappingKey(b)
	key := make([]byte, 32)
	ct := stdWrap(b, &wk.PublicKey, key)
	for b.Loop() {
		out, err := unwrapImportCiphertext(wk, crypto.SHA256, ct)
		if err != nil {
			b.Fatal(err)
		}
		clear(out)
	}
}

// BenchmarkKWPUnwrap32: AES-KWP of a 32-byte key alone.
func BenchmarkKWPUnwrap32(b *testing.B) {
	kek, key := make([]byte, 32), make([]byte, 32)
	w, _ := kwpWrap(kek, key)
	for b.Loop() {
		kwpUnwrap(kek, w)
	}
}

// BenchmarkWrappingKeyGeneration: what the first wrapping_key call of a
// cluster spends making the key.
func BenchmarkWrappingKeyGeneration(b *testing.B) {
	for b.Loop() {
		if _, err := rsa.GenerateKey(rand.Reader, wrappingKeyBits); err != nil {
			b.Fatal(err)
		}
	}
}
