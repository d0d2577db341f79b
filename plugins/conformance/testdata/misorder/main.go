// Command misorder is a crypto plugin that breaks the contract on
// purpose: it answers an Encrypt batch in reverse order. The conformance
// tests run RunBinary on it to show that the suite catches that.
package main

import (
	"context"
	"slices"

	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
)

type misorder struct{ soft.Backend }

func (m misorder) Encrypt(ctx context.Context, items []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
	out, err := m.Backend.Encrypt(ctx, items)
	slices.Reverse(out)
	return out, err
}

func main() { sdk.ServeCrypto(misorder{soft.New()}) }
