// Command chacha is an example third-party crypto plugin for keyraft,
// written only against the plugin SDK (github.com/keyraft/keyraft/plugins/sdk),
// as a plugin author would write one. It offers one key type,
// chacha20-poly1305 (Vault's name for it), for encrypt and decrypt.
//
// Like the built-in soft backend it keeps no key material: Generate
// returns the key to the node, which stores it wrapped under its barrier
// and hands it back, unwrapped in memory, with every use. So this process
// holds no state, and a restart loses nothing.
//
// See README.md for building, testing and registering it.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/keyraft/keyraft/plugins/sdk"
)

// KeyType is the one key type this plugin offers.
const KeyType = "chacha20-poly1305"

// Material is version | 16-byte handle | 32-byte key: the handle inside
// the material binds the two, so a mix-up of keys is an error, not a
// decryption under the wrong key.
const (
	version    = 1
	handleSize = 16
	headerSize = 1 + handleSize
)

// Backend implements sdk.CryptoBackend. It has no state.
type Backend struct{}

var _ sdk.CryptoBackend = Backend{}

// Capabilities says what the backend does: encrypt and decrypt with one
// key type; the node keeps the material.
func (Backend) Capabilities(context.Context) (sdk.Capabilities, error) {
	return sdk.Capabilities{KeyTypes: []sdk.KeyTypeCapability{
		{KeyType: KeyType, Operations: []sdk.Operation{sdk.OpEncrypt, sdk.OpDecrypt}},
	}}, nil
}

// Generate makes a random key and a random handle.
func (Backend) Generate(_ context.Context, keyType string) (sdk.GeneratedKey, error) {
	if keyType != KeyType {
		return sdk.GeneratedKey{}, fmt.Errorf("chacha: unsupported key type %q", keyType)
	}
	m := make([]byte, headerSize+chacha20poly1305.KeySize)
	m[0] = version
	if _, err := rand.Read(m[1:]); err != nil {
		return sdk.GeneratedKey{}, err
	}
	return sdk.GeneratedKey{Handle: append([]byte(nil), m[1:headerSize]...), Material: m}, nil
}

// Destroy has nothing to forget: the node drops the material.
func (Backend) Destroy(context.Context, sdk.KeyRef) error { return nil }

var errAuth = errors.New("chacha: message authentication failed")

// aead checks that the material belongs to the handle and opens it.
func aead(ref sdk.KeyRef) (interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}, error) {
	m := ref.Material
	if len(m) != headerSize+chacha20poly1305.KeySize || m[0] != version {
		return nil, errors.New("chacha: key material missing or not this plugin's")
	}
	if subtle.ConstantTimeCompare(ref.Handle, m[1:headerSize]) != 1 {
		return nil, errors.New("chacha: key material does not belong to the handle")
	}
	return chacha20poly1305.New(m[headerSize:])
}

// Encrypt seals each item with a random 96-bit nonce: nonce ||
// ciphertext || tag. A bad item gets its own error; the others their
// answers.
func (Backend) Encrypt(_ context.Context, items []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
	out := make([]sdk.EncryptResult, len(items))
	for i, it := range items {
		a, err := aead(it.Key)
		if err != nil {
			out[i].Err = err
			continue
		}
		nonce := make([]byte, chacha20poly1305.NonceSize, chacha20poly1305.NonceSize+len(it.Plaintext)+chacha20poly1305.Overhead)
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i].Ciphertext = a.Seal(nonce, nonce, it.Plaintext, it.AssocData)
	}
	return out, nil
}

// Decrypt opens each item.
func (Backend) Decrypt(_ context.Context, items []sdk.DecryptItem) ([]sdk.DecryptResult, error) {
	out := make([]sdk.DecryptResult, len(items))
	for i, it := range items {
		a, err := aead(it.Key)
		if err != nil {
			out[i].Err = err
			continue
		}
		const n = chacha20poly1305.NonceSize
		if len(it.Ciphertext) < n+chacha20poly1305.Overhead {
			out[i].Err = errors.New("chacha: ciphertext too short")
			continue
		}
		pt, err := a.Open(nil, it.Ciphertext[:n], it.Ciphertext[n:], it.AssocData)
		if err != nil {
			out[i].Err = errAuth
			continue
		}
		if pt == nil {
			pt = []byte{}
		}
		out[i].Plaintext = pt
	}
	return out, nil
}

var errUnsupported = errors.New("chacha: chacha20-poly1305 keys only encrypt and decrypt")

// Sign is not offered: every item fails.
func (Backend) Sign(_ context.Context, items []sdk.SignItem) ([]sdk.SignResult, error) {
	out := make([]sdk.SignResult, len(items))
	for i := range out {
		out[i].Err = errUnsupported
	}
	return out, nil
}

// Verify is not offered: every item fails.
func (Backend) Verify(_ context.Context, items []sdk.VerifyItem) ([]sdk.VerifyResult, error) {
	out := make([]sdk.VerifyResult, len(items))
	for i := range out {
		out[i].Err = errUnsupported
	}
	return out, nil
}

// HMAC is not offered: every item fails.
func (Backend) HMAC(_ context.Context, items []sdk.HMACItem) ([]sdk.HMACResult, error) {
	out := make([]sdk.HMACResult, len(items))
	for i := range out {
		out[i].Err = errUnsupported
	}
	return out, nil
}

func main() {
	if !sdk.LaunchedByNode() {
		fmt.Fprintln(os.Stderr, "chacha is a keyraft crypto plugin: register it with `keyraft plugin register` and a node starts it")
		os.Exit(1)
	}
	sdk.Logger().Info("serving chacha20-poly1305")
	sdk.ServeCrypto(Backend{})
}
