package pkcs11

import (
	"context"
	"testing"
	"time"

	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/internal/plugintest"
	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
)

// BenchmarkEncrypt: AES-256-GCM encryption of 64-byte plaintexts, one
// item per call and 64 items per call, by the pkcs11 backend (real
// SoftHSM2 token) and by soft, each in this process and as a plugin
// process behind the host (gRPC over mutual TLS). ns/item is the cost of
// one item.
func BenchmarkEncrypt(b *testing.B) {
	h := newHSM(b)
	softBin, softSum := plugintest.Build(b, b.TempDir(), "github.com/keyraft/keyraft/cmd/keyraft-plugin-soft")
	start := func(name, bin string, sum []byte, args, env []string) sdk.CryptoBackend {
		c, err := host.Start(context.Background(), host.Config{Name: name, Command: bin, Args: args, Env: env, SHA256: sum})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c.Crypto()
	}
	pBin, pSum := buildPlugin(b)
	backends := []struct {
		name string
		b    sdk.CryptoBackend
	}{
		{"pkcs11/in-process", h.open()},
		{"pkcs11/plugin", start("pkcs11", pBin, pSum, h.args(), h.env())},
		{"soft/in-process", soft.New()},
		{"soft/plugin", start("soft", softBin, softSum, nil, nil)},
	}
	ctx := context.Background()
	for _, be := range backends {
		k, err := be.b.Generate(ctx, sdk.KeyAES256GCM96)
		if err != nil {
			b.Fatal(err)
		}
		ref := sdk.KeyRef{Handle: k.Handle, Material: k.Material}
		for _, n := range []int{1, 64} {
			items := make([]sdk.EncryptItem, n)
			for i := range items {
				items[i] = sdk.EncryptItem{Key: ref, Plaintext: make([]byte, 64), AssocData: []byte("context")}
			}
			name := be.name + "/item"
			if n > 1 {
				name = be.name + "/batch64"
			}
			b.Run(name, func(b *testing.B) {
				start := time.Now()
				for b.Loop() {
					rs, err := be.b.Encrypt(ctx, items)
					if err != nil || rs[0].Err != nil {
						b.Fatal(err, rs[0].Err)
					}
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*n), "ns/item")
			})
		}
	}
}

// BenchmarkEncryptParallel: single-item encryptions from many goroutines
// at once (each on a session of its own), in process.
func BenchmarkEncryptParallel(b *testing.B) {
	be := newHSM(b).open()
	ctx := context.Background()
	k, err := be.Generate(ctx, sdk.KeyAES256GCM96)
	if err != nil {
		b.Fatal(err)
	}
	items := []sdk.EncryptItem{{Key: sdk.KeyRef{Handle: k.Handle}, Plaintext: make([]byte, 64)}}
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if rs, err := be.Encrypt(ctx, items); err != nil || rs[0].Err != nil {
				b.Error(err)
				return
			}
		}
	})
}
