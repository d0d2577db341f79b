// Package soft is the built-in software crypto backend: AES-256-GCM,
// Ed25519 and HMAC-SHA256 from Go's standard library. It keeps no key
// material: Generate returns the material to the node, which wraps it
// under the barrier, stores it in the replicated state and hands it back
// (unwrapped, in memory) with every use.
package soft

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

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
}

var keyTypes = []keyType{
	{1, sdk.KeyAES256GCM96, 32, []sdk.Operation{sdk.OpEncrypt, sdk.OpDecrypt}},
	{2, sdk.KeyEd25519, ed25519.SeedSize, []sdk.Operation{sdk.OpSign, sdk.OpVerify}},
	{3, sdk.KeyHMACSHA256, 32, []sdk.Operation{sdk.OpHMAC}},
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

func gcm(k []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// aeadFor opens the AES-GCM key of ref for op.
func aeadFor(ref sdk.KeyRef, op sdk.Operation) (cipher.AEAD, error) {
	k, _, err := key(ref, op)
	if err != nil {
		return nil, err
	}
	return gcm(k)
}

// Encrypt implements sdk.CryptoBackend: a random 96-bit nonce, then the
// sealed text (nonce || ciphertext || tag).
func (Backend) Encrypt(_ context.Context, items []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
	out := make([]sdk.EncryptResult, len(items))
	for i, it := range items {
		a, err := aeadFor(it.Key, sdk.OpEncrypt)
		if err != nil {
			out[i].Err = err
			continue
		}
		ct := make([]byte, a.NonceSize(), a.NonceSize()+len(it.Plaintext)+a.Overhead())
		if _, err := rand.Read(ct); err != nil {
			return nil, err
		}
		out[i].Ciphertext = a.Seal(ct, ct, it.Plaintext, it.AssocData)
	}
	return out, nil
}

// Decrypt implements sdk.CryptoBackend.
func (Backend) Decrypt(_ context.Context, items []sdk.DecryptItem) ([]sdk.DecryptResult, error) {
	out := make([]sdk.DecryptResult, len(items))
	for i, it := range items {
		a, err := aeadFor(it.Key, sdk.OpDecrypt)
		if err != nil {
			out[i].Err = err
			continue
		}
		if len(it.Ciphertext) < a.NonceSize()+a.Overhead() {
			out[i].Err = errors.New("soft: ciphertext too short")
			continue
		}
		n := a.NonceSize()
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

// Sign implements sdk.CryptoBackend (Ed25519, pure).
func (Backend) Sign(_ context.Context, items []sdk.SignItem) ([]sdk.SignResult, error) {
	out := make([]sdk.SignResult, len(items))
	for i, it := range items {
		k, _, err := key(it.Key, sdk.OpSign)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Signature = ed25519.Sign(ed25519.NewKeyFromSeed(k), it.Message)
	}
	return out, nil
}

// Verify implements sdk.CryptoBackend.
func (Backend) Verify(_ context.Context, items []sdk.VerifyItem) ([]sdk.VerifyResult, error) {
	out := make([]sdk.VerifyResult, len(items))
	for i, it := range items {
		k, _, err := key(it.Key, sdk.OpVerify)
		if err != nil {
			out[i].Err = err
			continue
		}
		pub := ed25519.NewKeyFromSeed(k).Public().(ed25519.PublicKey)
		out[i].Valid = len(it.Signature) == ed25519.SignatureSize && ed25519.Verify(pub, it.Message, it.Signature)
	}
	return out, nil
}

// HMAC implements sdk.CryptoBackend (HMAC-SHA256).
func (Backend) HMAC(_ context.Context, items []sdk.HMACItem) ([]sdk.HMACResult, error) {
	out := make([]sdk.HMACResult, len(items))
	for i, it := range items {
		k, _, err := key(it.Key, sdk.OpHMAC)
		if err != nil {
			out[i].Err = err
			continue
		}
		m := hmac.New(sha256.New, k)
		m.Write(it.Message)
		out[i].MAC = m.Sum(nil)
	}
	return out, nil
}
