package host_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/bolt"
	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/internal/plugintest"
	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
)

// The cost of running a backend as a plugin process: the same bolt store
// and soft backend called in process and through the host.

func stores(b *testing.B) map[string]plugins.Storage {
	in, err := bolt.Open(filepath.Join(b.TempDir(), "in.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close() })
	c, _ := startBolt(b, filepath.Join(b.TempDir(), "plugin.db"), nil)
	return map[string]plugins.Storage{"inprocess": in, "plugin": c.Storage()}
}

func BenchmarkGet(b *testing.B) {
	for _, name := range []string{"inprocess", "plugin"} {
		s := stores(b)[name]
		var batch []plugins.Mutation
		for i := 0; i < 1000; i++ {
			batch = append(batch, put(fmt.Sprintf("k/%04d", i), string(make([]byte, 256))))
		}
		if err := s.Write(batch); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := s.Get([]byte(fmt.Sprintf("k/%04d", i%1000))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWrite64 writes batches of 64 puts of 256 bytes; bolt fsyncs
// every batch, in both cases.
func BenchmarkWrite64(b *testing.B) {
	for _, name := range []string{"inprocess", "plugin"} {
		s := stores(b)[name]
		b.Run(name, func(b *testing.B) {
			val := make([]byte, 256)
			for i := 0; b.Loop(); i++ {
				batch := make([]plugins.Mutation, 64)
				for j := range batch {
					batch[j] = plugins.Mutation{Kind: plugins.Put, Key: []byte(fmt.Sprintf("w/%08d/%02d", i, j)), Value: val}
				}
				if err := s.Write(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoundTrip is one small call with no storage work behind it:
// HMAC of one 32-byte message with the soft backend, and an encrypt batch
// of 64 items.
func BenchmarkRoundTrip(b *testing.B) {
	bin, sum := binary(b, "github.com/keyraft/keyraft/cmd/keyraft-plugin-soft")
	c, err := host.Start(context.Background(), host.Config{Name: "soft", Command: bin, SHA256: sum, Logger: plugintest.Logger(b, nil)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	ctx := context.Background()
	for _, be := range []struct {
		name string
		b    sdk.CryptoBackend
	}{{"inprocess", soft.New()}, {"plugin", c.Crypto()}} {
		hk, err := be.b.Generate(ctx, sdk.KeyHMACSHA256)
		if err != nil {
			b.Fatal(err)
		}
		ak, err := be.b.Generate(ctx, sdk.KeyAES256GCM96)
		if err != nil {
			b.Fatal(err)
		}
		msg := make([]byte, 32)
		b.Run("hmac1/"+be.name, func(b *testing.B) {
			items := []sdk.HMACItem{{Key: sdk.KeyRef{Handle: hk.Handle, Material: hk.Material}, Message: msg}}
			for b.Loop() {
				if _, err := be.b.HMAC(ctx, items); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("encrypt64/"+be.name, func(b *testing.B) {
			items := make([]sdk.EncryptItem, 64)
			for i := range items {
				items[i] = sdk.EncryptItem{Key: sdk.KeyRef{Handle: ak.Handle, Material: ak.Material}, Plaintext: msg}
			}
			for b.Loop() {
				if _, err := be.b.Encrypt(ctx, items); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
