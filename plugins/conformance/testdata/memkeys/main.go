// Command memkeys is a crypto plugin that breaks the contract on purpose:
// it says it keeps its keys (KeepsMaterial) but holds them in memory
// only, so a restart loses them. The conformance tests show that
// RunBinary catches it.
package main

import (
	"context"
	"sync"

	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
)

type memkeys struct {
	soft.Backend
	mu   sync.Mutex
	keys map[string][]byte // handle → soft's material
}

func (m *memkeys) Capabilities(ctx context.Context) (sdk.Capabilities, error) {
	c, err := m.Backend.Capabilities(ctx)
	c.KeepsMaterial = true
	return c, err
}

func (m *memkeys) Generate(ctx context.Context, keyType string) (sdk.GeneratedKey, error) {
	k, err := m.Backend.Generate(ctx, keyType)
	if err != nil {
		return k, err
	}
	m.mu.Lock()
	m.keys[string(k.Handle)] = k.Material
	m.mu.Unlock()
	k.Material = nil
	return k, nil
}

func (m *memkeys) Destroy(_ context.Context, k sdk.KeyRef) error {
	m.mu.Lock()
	delete(m.keys, string(k.Handle))
	m.mu.Unlock()
	return nil
}

// ref puts the material back; an unknown handle gets none, which soft
// refuses.
func (m *memkeys) ref(k sdk.KeyRef) sdk.KeyRef {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(k.Material) != 0 {
		return sdk.KeyRef{Handle: k.Handle, Material: []byte("refused")}
	}
	return sdk.KeyRef{Handle: k.Handle, Material: m.keys[string(k.Handle)]}
}

func (m *memkeys) Encrypt(ctx context.Context, items []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
	for i := range items {
		items[i].Key = m.ref(items[i].Key)
	}
	return m.Backend.Encrypt(ctx, items)
}

func (m *memkeys) Decrypt(ctx context.Context, items []sdk.DecryptItem) ([]sdk.DecryptResult, error) {
	for i := range items {
		items[i].Key = m.ref(items[i].Key)
	}
	return m.Backend.Decrypt(ctx, items)
}

func (m *memkeys) Sign(ctx context.Context, items []sdk.SignItem) ([]sdk.SignResult, error) {
	for i := range items {
		items[i].Key = m.ref(items[i].Key)
	}
	return m.Backend.Sign(ctx, items)
}

func (m *memkeys) Verify(ctx context.Context, items []sdk.VerifyItem) ([]sdk.VerifyResult, error) {
	for i := range items {
		items[i].Key = m.ref(items[i].Key)
	}
	return m.Backend.Verify(ctx, items)
}

func (m *memkeys) HMAC(ctx context.Context, items []sdk.HMACItem) ([]sdk.HMACResult, error) {
	for i := range items {
		items[i].Key = m.ref(items[i].Key)
	}
	return m.Backend.HMAC(ctx, items)
}

func main() { sdk.ServeCrypto(&memkeys{keys: map[string][]byte{}}) }
