package host

import (
	"context"

	"github.com/keyraft/keyraft/plugins/sdk"
)

// Crypto returns the plugin's crypto backend. Each call is bounded by the
// host's timeout as well as ctx.
func (c *Client) Crypto() sdk.CryptoBackend { return c.crypto }

type cryptoBackend struct{ c *Client }

var _ sdk.CryptoBackend = (*cryptoBackend)(nil)

func (b *cryptoBackend) Capabilities(ctx context.Context) (out sdk.Capabilities, err error) {
	err = b.c.call(ctx, "Capabilities", func(ctx context.Context, in *instance) (err error) {
		out, err = in.crypto.Capabilities(ctx)
		return err
	})
	return out, err
}

func (b *cryptoBackend) Generate(ctx context.Context, keyType string) (out sdk.GeneratedKey, err error) {
	err = b.c.call(ctx, "Generate", func(ctx context.Context, in *instance) (err error) {
		out, err = in.crypto.Generate(ctx, keyType)
		return err
	})
	return out, err
}

func (b *cryptoBackend) Destroy(ctx context.Context, key sdk.KeyRef) error {
	return b.c.call(ctx, "Destroy", func(ctx context.Context, in *instance) error {
		return in.crypto.Destroy(ctx, key)
	})
}

func (b *cryptoBackend) Encrypt(ctx context.Context, items []sdk.EncryptItem) (out []sdk.EncryptResult, err error) {
	err = b.c.call(ctx, "Encrypt", func(ctx context.Context, in *instance) (err error) {
		out, err = in.crypto.Encrypt(ctx, items)
		return err
	})
	return out, err
}

func (b *cryptoBackend) Decrypt(ctx context.Context, items []sdk.DecryptItem) (out []sdk.DecryptResult, err error) {
	err = b.c.call(ctx, "Decrypt", func(ctx context.Context, in *instance) (err error) {
		out, err = in.crypto.Decrypt(ctx, items)
		return err
	})
	return out, err
}

func (b *cryptoBackend) Sign(ctx context.Context, items []sdk.SignItem) (out []sdk.SignResult, err error) {
	err = b.c.call(ctx, "Sign", func(ctx context.Context, in *instance) (err error) {
		out, err = in.crypto.Sign(ctx, items)
		return err
	})
	return out, err
}

func (b *cryptoBackend) Verify(ctx context.Context, items []sdk.VerifyItem) (out []sdk.VerifyResult, err error) {
	err = b.c.call(ctx, "Verify", func(ctx context.Context, in *instance) (err error) {
		out, err = in.crypto.Verify(ctx, items)
		return err
	})
	return out, err
}

func (b *cryptoBackend) HMAC(ctx context.Context, items []sdk.HMACItem) (out []sdk.HMACResult, err error) {
	err = b.c.call(ctx, "HMAC", func(ctx context.Context, in *instance) (err error) {
		out, err = in.crypto.HMAC(ctx, items)
		return err
	})
	return out, err
}
