package sdk

import "context"

// Key types a crypto backend may support, named as in Vault's transit
// engine.
const (
	KeyAES256GCM96 = "aes256-gcm96"
	KeyEd25519     = "ed25519"
	KeyHMACSHA256  = "hmac-sha256"
)

// Operation is a use of a key.
type Operation string

// The operations of the crypto contract.
const (
	OpEncrypt Operation = "encrypt"
	OpDecrypt Operation = "decrypt"
	OpSign    Operation = "sign"
	OpVerify  Operation = "verify"
	OpHMAC    Operation = "hmac"
)

// KeyTypeCapability says what a backend does with one key type.
type KeyTypeCapability struct {
	KeyType    string
	Operations []Operation
}

// Supports reports whether op is among the key type's operations.
func (c KeyTypeCapability) Supports(op Operation) bool {
	for _, o := range c.Operations {
		if o == op {
			return true
		}
	}
	return false
}

// Capabilities describes a crypto backend.
type Capabilities struct {
	KeyTypes []KeyTypeCapability
	// KeepsMaterial is true when the backend holds key material itself
	// (an HSM) and Generate returns only a handle.
	KeepsMaterial bool
}

// KeyType returns the capability of one key type, if supported.
func (c Capabilities) KeyType(name string) (KeyTypeCapability, bool) {
	for _, kt := range c.KeyTypes {
		if kt.KeyType == name {
			return kt, true
		}
	}
	return KeyTypeCapability{}, false
}

// KeyRef names one key version for a use.
type KeyRef struct {
	// Handle is the backend's opaque name for the key version.
	Handle []byte
	// Material is what Generate returned as material, for a backend that
	// keeps none (the node stores it barrier-wrapped and unwraps it for
	// each use). Secret: never log it.
	Material []byte
}

// GeneratedKey is a new key version.
type GeneratedKey struct {
	Handle []byte
	// Material is set when the backend keeps no material. It is secret:
	// the node wraps it under the barrier before storing it anywhere.
	Material []byte
	// PublicKey is set for asymmetric key types.
	PublicKey []byte
}

// The items of a batch and their results. A result's Err is the failure
// of that item alone (bad ciphertext, wrong key type...): the other items
// of the batch still have their answers.
type (
	EncryptItem struct {
		Key                  KeyRef
		Plaintext, AssocData []byte
	}
	EncryptResult struct {
		Ciphertext []byte
		Err        error
	}
	DecryptItem struct {
		Key                   KeyRef
		Ciphertext, AssocData []byte
	}
	DecryptResult struct {
		Plaintext []byte
		Err       error
	}
	SignItem struct {
		Key     KeyRef
		Message []byte
	}
	SignResult struct {
		Signature []byte
		Err       error
	}
	VerifyItem struct {
		Key                KeyRef
		Message, Signature []byte
	}
	VerifyResult struct {
		// Valid is false for a signature that does not verify (Err nil).
		Valid bool
		Err   error
	}
	HMACItem struct {
		Key     KeyRef
		Message []byte
	}
	HMACResult struct {
		MAC []byte
		Err error
	}
)

// CryptoBackend is the contract of a crypto backend: generate a key
// version of a type, then use it by handle, a batch of items per call.
// Every batch method returns exactly one result per item, in order; its
// own error is for a failure of the whole call.
type CryptoBackend interface {
	Capabilities(ctx context.Context) (Capabilities, error)
	Generate(ctx context.Context, keyType string) (GeneratedKey, error)
	// Destroy forgets a key version the backend keeps; a backend that
	// keeps none returns nil.
	Destroy(ctx context.Context, key KeyRef) error
	Encrypt(ctx context.Context, items []EncryptItem) ([]EncryptResult, error)
	Decrypt(ctx context.Context, items []DecryptItem) ([]DecryptResult, error)
	Sign(ctx context.Context, items []SignItem) ([]SignResult, error)
	Verify(ctx context.Context, items []VerifyItem) ([]VerifyResult, error)
	HMAC(ctx context.Context, items []HMACItem) ([]HMACResult, error)
}
