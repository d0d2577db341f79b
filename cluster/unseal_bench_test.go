package cluster

import (
	"context"
	"testing"

	"github.com/keyraft/keyraft/seal"
)

// BenchmarkUnseal measures one unseal once the seal is at hand: Shamir
// (the combined unseal key) and PKCS#11 (SoftHSM2 unwrapping the root
// key): unwrap the root key, open the keyring, load the audit keys.
func BenchmarkUnseal(b *testing.B) {
	ctx := context.Background()
	b.Run("shamir", func(b *testing.B) {
		n, err := New(clusterNodeConfig(b, "n1"))
		if err != nil {
			b.Fatal(err)
		}
		defer n.Shutdown()
		res, err := n.DevInit(ctx, "")
		if err != nil {
			b.Fatal(err)
		}
		key, err := seal.Combine(res.Keys)
		if err != nil {
			b.Fatal(err)
		}
		sh, err := seal.NewShamir(key)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			n.sealInternal()
			if err := n.unsealWithSeal(ctx, sh); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pkcs11", func(b *testing.B) {
		h := newSoftHSM(b)
		cfg := clusterNodeConfig(b, "n1")
		cfg.AutoSeal, cfg.AutoSealType = h.seal, "pkcs11"
		n, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer n.Shutdown()
		if _, err := n.Init(ctx, InitRequest{RecoveryShares: 1, RecoveryThreshold: 1}); err != nil {
			b.Fatal(err)
		}
		s, err := n.openAutoSeal(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n.operatorSealed.Store(true) // keep the auto-unseal loop out of the way
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			n.sealInternal()
			if err := n.unsealWithSeal(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
