package keys

import (
	"fmt"
	"testing"
)

func BenchmarkEncrypt(b *testing.B) {
	h := testHandle(b, Spec{Type: AES256GCM96}, 1)
	for _, size := range []int{32, 4096} {
		b.Run(fmt.Sprintf("%s/%dB", AES256GCM96, size), func(b *testing.B) {
			pt := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Encrypt(pt, EncryptOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	h := testHandle(b, Spec{Type: AES256GCM96}, 1)
	for _, size := range []int{32, 4096} {
		b.Run(fmt.Sprintf("%s/%dB", AES256GCM96, size), func(b *testing.B) {
			ct, err := h.Encrypt(make([]byte, size), EncryptOptions{})
			if err != nil {
				b.Fatal(err)
			}
			_, body := mustParse(b, ct)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Decrypt(body, EncryptOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	input := make([]byte, 64)
	for _, typ := range []Type{Ed25519, ECDSAP256, RSA2048} {
		b.Run(string(typ), func(b *testing.B) {
			h := testHandle(b, Spec{Type: typ}, 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Sign(input, SignOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
