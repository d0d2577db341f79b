package pkcs11

import (
	"context"
	"testing"
)

// BenchmarkWrap measures Wrap of a 32-byte root key on SoftHSM: one
// goroutine, then GOMAXPROCS goroutines sharing the default pool of 8
// sessions. BenchmarkUnwrap measures the reverse. Both report ops/s.
func BenchmarkWrap(b *testing.B) {
	h := newHSM(b)
	h.token("bench", testPIN)
	s := h.open(h.config("bench"))
	key := rootKey(b)
	ctx := context.Background()

	b.Run("AES-GCM", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Wrap(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	b.Run("AES-GCM/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Wrap(ctx, key); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}

func BenchmarkUnwrap(b *testing.B) {
	h := newHSM(b)
	h.token("bench", testPIN)
	ctx := context.Background()
	gcm := h.open(h.config("bench"))
	rsaCfg := h.config("bench")
	rsaCfg.KeyLabel, rsaCfg.Mechanism, rsaCfg.OAEPHash = "bench-rsa", MechanismRSAOAEP, "SHA1"
	rsa := h.open(rsaCfg)
	key := rootKey(b)

	for _, c := range []struct {
		name string
		s    *Seal
	}{{"AES-GCM", gcm}, {"RSA-OAEP-3072-SHA1", rsa}} {
		blob, err := c.s.Wrap(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.s.Unwrap(ctx, blob); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
