// Package soft is the built-in software crypto backend: AES-256-GCM,
// Ed25519 and HMAC-SHA256. Its primitives are package keys' (the same code
// that serves in-process keys), so there is one software implementation
// to review. It keeps no key material: Generate returns the material to
// the node, which wraps it under the barrier, stores it in the replicated
// state and hands it back (unwrapped, in memory) with every use.
package soft

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/keyraft/keyraft/keys"
	"github.com/keyraft/keyraft/plugins/sdk"
)

// Material is [format 1][key type][16-byte handle][key]: self-describing,
// and bound to its handle so that a mix-up is an error, not a wrong key.
const (
	format     = 1
	handleSize = 16
	headerSize = 2 + handleSize
)

type keyType struct {
	code    byte
	name    string
	keySize int
	ops     []sdk.Operation
	keys    keys.Type // the type package keys serves it as
}

var keyTypes = []keyType{
	{1, sdk.KeyAES256GCM96, 32, []sdk.Operation{sdk.OpEncrypt, sdk.OpDecrypt}, keys.AES256GCM96},
	{2, sdk.KeyEd25519, ed25519.SeedSize, []sdk.Operation{sdk.OpSign, sdk.OpVerify}, keys.Ed25519},
	{3, sdk.KeyHMACSHA256, 32, []sdk.Operation{sdk.OpHMAC}, keys.HMAC},
}

// Backend implements sdk.CryptoBackend. It holds no state.
type Backend struct{}

var _ sdk.CryptoBackend = Backend{}

// New returns the backend.
func New() Backend { return Backend{} }

// Capabilities implements sdk.CryptoBackend.
func (Backend) Capabilities(context.Context) (sdk.Capabilities, error) {
	var c sdk.Capabilities
	for _, kt := range keyTypes {
		c.KeyTypes = append(c.KeyTypes, sdk.KeyTypeCapability{KeyType: kt.name, Operations: append([]sdk.Operation(nil), kt.ops...)})
	}
	return c, nil
}

// Generate implements sdk.CryptoBackend.
func (Backend) Generate(_ context.Context, name string) (sdk.GeneratedKey, error) {
	for _, kt := range keyTypes {
		if kt.name != name {
			continue
		}
		m := make([]byte, headerSize+kt.keySize)
		m[0], m[1] = format, kt.code
		if _, err := rand.Read(m[2:]); err != nil {
			return sdk.GeneratedKey{}, err
		}
		out := sdk.GeneratedKey{Handle: append([]byte(nil), m[2:headerSize]...), Material: m}
		if kt.code == 2 {
			out.PublicKey = ed25519.NewKeyFromSeed(m[headerSize:]).Public().(ed25519.PublicKey)
		}
		return out, nil
	}
	return sdk.GeneratedKey{}, fmt.Errorf("soft: unsupported key type %q", name)
}

// Destroy implements sdk.CryptoBackend: there is nothing to forget.
func (Backend) Destroy(context.Context, sdk.KeyRef) error { return nil }

var errAuth = errors.New("soft: message authentication failed")

// key checks a reference and returns the raw key for an operation.
func key(ref sdk.KeyRef, op sdk.Operation) ([]byte, keyType, error) {
	m := ref.Material
	if len(m) < headerSize || m[0] != format {
		return nil, keyType{}, errors.New("soft: key material missing or not soft's")
	}
	if subtle.ConstantTimeCompare(ref.Handle, m[2:headerSize]) != 1 {
		return nil, keyType{}, errors.New("soft: key material does not belong to the handle")
	}
	for _, kt := range keyTypes {
		if kt.code != m[1] {
			continue
		}
		if len(m) != headerSize+kt.keySize {
			return nil, kt, errors.New("soft: key material has the wrong length")
		}
		for _, o := range kt.ops {
			if o == op {
				return m[headerSize:], kt, nil
			}
		}
		return nil, kt, fmt.Errorf("soft: key type %s does not support %s", kt.name, op)
	}
	return nil, keyType{}, fmt.Errorf("soft: unknown key type code %d", m[1])
}

// handle opens ref for op as a package keys handle (the caller zeroes it).
func handle(ref sdk.KeyRef, op sdk.Operation) (*keys.Handle, error) {
	k, kt, err := key(ref, op)
	if err != nil {
		return nil, err
	}
	h, err := keys.NewHandle(keys.Spec{Type: kt.keys}, &keys.Version{Version: 1, Secret: k})
	if err != nil {
		return nil, fmt.Errorf("soft: %w", err)
	}
	return h, nil
}

// each runs op on every item with its key's handle: a bad item gets its
// own error, the others their answers.
func each[I, R any](items []I, op sdk.Operation, ref func(I) sdk.KeyRef, do func(*keys.Handle, I, *R) error, fail func(*R, error)) []R {
	out := make([]R, len(items))
	for i, it := range items {
		h, err := handle(ref(it), op)
		if err == nil {
			err = do(h, it, &out[i])
			h.Zero()
		}
		if err != nil {
			fail(&out[i], err)
		}
	}
	return out
}

// Encrypt implements sdk.CryptoBackend: a random 96-bit nonce, then the
// sealed text (nonce || ciphertext || tag).
func (Backend) Encrypt(_ context.Context, items []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
	return each(items, sdk.OpEncrypt, func(it sdk.EncryptItem) sdk.KeyRef { return it.Key },
		func(h *keys.Handle, it sdk.EncryptItem, r *sdk.EncryptResult) (err error) {
			r.Ciphertext, err = h.Seal(it.Plaintext, keys.EncryptOptions{AssociatedData: it.AssocData})
			return err
		}, func(r *sdk.EncryptResult, err error) { r.Err = err }), nil
}

// Decrypt implements sdk.CryptoBackend. Failures keep soft's own words
// (callers see them), not package keys'.
func (Backend) Decrypt(_ context.Context, items []sdk.DecryptItem) ([]sdk.DecryptResult, error) {
	return each(items, sdk.OpDecrypt, func(it sdk.DecryptItem) sdk.KeyRef { return it.Key },
		func(h *keys.Handle, it sdk.DecryptItem, r *sdk.DecryptResult) error {
			if len(it.Ciphertext) < gcmNonceSize+gcmTagSize {
				return errors.New("soft: ciphertext too short")
			}
			pt, err := h.Decrypt(it.Ciphertext, keys.EncryptOptions{AssociatedData: it.AssocData})
			if err != nil {
				return errAuth
			}
			r.Plaintext = pt
			return nil
		}, func(r *sdk.DecryptResult, err error) { r.Err = err }), nil
}

// The AES-GCM framing: a 96-bit nonce before, a 128-bit tag after.
const gcmNonceSize, gcmTagSize = 12, 16

// Sign implements sdk.CryptoBackend (Ed25519, pure).
func (Backend) Sign(_ context.Context, items []sdk.SignItem) ([]sdk.SignResult, error) {
	return each(items, sdk.OpSign, func(it sdk.SignItem) sdk.KeyRef { return it.Key },
		func(h *keys.Handle, it sdk.SignItem, r *sdk.SignResult) (err error) {
			r.Signature, err = h.SignBody(it.Message, keys.SignOptions{})
			return err
		}, func(r *sdk.SignResult, err error) { r.Err = err }), nil
}

// Verify implements sdk.CryptoBackend.
func (Backend) Verify(_ context.Context, items []sdk.VerifyItem) ([]sdk.VerifyResult, error) {
	return each(items, sdk.OpVerify, func(it sdk.VerifyItem) sdk.KeyRef { return it.Key },
		func(h *keys.Handle, it sdk.VerifyItem, r *sdk.VerifyResult) (err error) {
			r.Valid, err = h.Verify(it.Message, it.Signature, keys.SignOptions{})
			return err
		}, func(r *sdk.VerifyResult, err error) { r.Err = err }), nil
}

// HMAC implements sdk.CryptoBackend (HMAC-SHA256).
func (Backend) HMAC(_ context.Context, items []sdk.HMACItem) ([]sdk.HMACResult, error) {
	return each(items, sdk.OpHMAC, func(it sdk.HMACItem) sdk.KeyRef { return it.Key },
		func(h *keys.Handle, it sdk.HMACItem, r *sdk.HMACResult) (err error) {
			r.MAC, err = h.MAC(it.Message, "sha2-256")
			return err
		}, func(r *sdk.HMACResult, err error) { r.Err = err }), nil
}
