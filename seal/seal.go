package seal

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
	"time"
)

// Seal protects the root key. Wrap turns the root key into a blob that is
// safe to store; Unwrap reverses it. Implementations: Shamir (a key
// combined from unseal shares) and, later, PKCS#11.
type Seal interface {
	// Type names the seal as the API reports it ("shamir", "pkcs11").
	Type() string
	// Wrap encrypts rootKey. The result never contains it in the clear.
	Wrap(ctx context.Context, rootKey []byte) ([]byte, error)
	// Unwrap decrypts a blob made by Wrap. It returns an error wrapping
	// ErrDecrypt when the blob was made by a different seal key.
	Unwrap(ctx context.Context, blob []byte) ([]byte, error)
}

// Shamir is the seal whose key is combined from unseal shares. The
// combined key never touches disk: operators hold its shares.
type Shamir struct {
	key []byte
}

// NewShamir returns a Shamir seal around a combined 32-byte unseal key.
// The seal keeps its own copy; call Zero when done.
func NewShamir(unsealKey []byte) (*Shamir, error) {
	if len(unsealKey) != keySize {
		return nil, fmt.Errorf("%w: unseal key is %d bytes, want %d", ErrDecrypt, len(unsealKey), keySize)
	}
	return &Shamir{key: append([]byte(nil), unsealKey...)}, nil
}

// Type implements Seal.
func (s *Shamir) Type() string { return "shamir" }

// Wrap implements Seal.
func (s *Shamir) Wrap(_ context.Context, rootKey []byte) ([]byte, error) {
	return gcmSeal(s.key, rootKeyAAD, rootKey)
}

// Unwrap implements Seal.
func (s *Shamir) Unwrap(_ context.Context, blob []byte) ([]byte, error) {
	return gcmOpen(s.key, rootKeyAAD, blob)
}

// Zero overwrites the unseal key.
func (s *Shamir) Zero() { clear(s.key) }

// ShareSize is the length of every share of a root key (Split adds one
// byte, the share's x coordinate).
const ShareSize = keySize + 1

// ShareCollector gathers unseal shares until the threshold is reached,
// the way an operator feeds them one at a time to /v1/sys/unseal.
// It is safe for concurrent use.
type ShareCollector struct {
	mu     sync.Mutex
	shares [][]byte
}

// Add records a share. When threshold shares are present it combines them,
// forgets them, and returns the combined key (the caller zeroes it).
// Submitting a share that is already held does not advance progress.
func (c *ShareCollector) Add(share []byte, threshold int) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Every secret keyraft splits is a root key (NewRootKey), so every
	// share has one length: a share of another length is refused before it
	// is held, so that nobody (who knows a ceremony's nonce) can make the
	// real shares look wrong by giving a junk one first.
	if len(share) != ShareSize {
		return nil, fmt.Errorf("%w: a share is %d bytes, not %d", ErrInvalidShares, ShareSize, len(share))
	}
	for _, s := range c.shares {
		if subtle.ConstantTimeCompare(s, share) == 1 {
			return nil, nil
		}
		if len(s) != len(share) {
			return nil, fmt.Errorf("%w: share length differs from the shares already given", ErrInvalidShares)
		}
	}
	c.shares = append(c.shares, append([]byte(nil), share...))
	if len(c.shares) < threshold {
		return nil, nil
	}
	defer c.resetLocked()
	return Combine(c.shares)
}

// Progress is the number of distinct shares held.
func (c *ShareCollector) Progress() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.shares)
}

// Reset forgets all shares given so far.
func (c *ShareCollector) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
}

func (c *ShareCollector) resetLocked() {
	for _, s := range c.shares {
		clear(s)
	}
	c.shares = nil
}

// Barrier encrypts every value the state machine stores. It is sealed
// (unusable) until Unseal loads the keyring, and Seal zeroes it again.
// It is safe for concurrent use.
type Barrier struct {
	mu      sync.RWMutex
	keyring *Keyring
}

// Sealed reports whether the barrier has no keyring loaded.
func (b *Barrier) Sealed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.keyring == nil
}

// Unseal decrypts the stored keyring blob with the root key and loads it.
func (b *Barrier) Unseal(rootKey, keyringBlob []byte) error {
	k, err := UnwrapKeyring(rootKey, keyringBlob)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keyring != nil {
		b.keyring.Zero()
	}
	b.keyring = k
	return nil
}

// Reload replaces the loaded keyring with a newer one (after a rotation
// stored a keyring with another term). Unlike Unseal it never unseals: it
// returns ErrSealed while sealed, and leaves the loaded keyring in place
// when the blob does not open with the root key.
func (b *Barrier) Reload(rootKey, keyringBlob []byte) error {
	k, err := UnwrapKeyring(rootKey, keyringBlob)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keyring == nil {
		k.Zero()
		return ErrSealed
	}
	b.keyring.Zero()
	b.keyring = k
	return nil
}

// KeyStatus describes the active term of the loaded keyring.
type KeyStatus struct {
	Term        uint32
	InstallTime time.Time
	// Encryptions is how many values this node has encrypted under the
	// term since it loaded the keyring (unseal, rotation, rekey).
	Encryptions uint64
}

// KeyStatus reports the active term and when it was installed, or
// ErrSealed.
func (b *Barrier) KeyStatus() (KeyStatus, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.keyring == nil {
		return KeyStatus{}, ErrSealed
	}
	t := b.keyring.terms[b.keyring.active]
	return KeyStatus{Term: t.Number, InstallTime: t.Installed, Encryptions: b.keyring.encryptions.Load()}, nil
}

// Rewrap re-encrypts a barrier value made under a term older than minTerm
// with the active term, bound to the same aad; the plaintext never leaves
// the barrier. It returns nil (and no error) when the value already has a
// term of at least minTerm, ErrSealed while sealed, and an error wrapping
// ErrDecrypt for a value that does not open.
func (b *Barrier) Rewrap(aad, ciphertext []byte, minTerm uint32) ([]byte, error) {
	term, err := CiphertextTerm(ciphertext)
	if err != nil {
		return nil, err
	}
	if term >= minTerm {
		return nil, nil
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.keyring == nil {
		return nil, ErrSealed
	}
	pt, err := b.keyring.Decrypt(aad, ciphertext)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return b.keyring.Encrypt(aad, pt)
}

// Seal zeroes and drops the keyring.
func (b *Barrier) Seal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keyring != nil {
		b.keyring.Zero()
		b.keyring = nil
	}
}

// Encrypt seals plaintext under the active term, bound to aad.
// It returns ErrSealed while sealed.
func (b *Barrier) Encrypt(aad, plaintext []byte) ([]byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.keyring == nil {
		return nil, ErrSealed
	}
	return b.keyring.Encrypt(aad, plaintext)
}

// Decrypt opens a barrier value. It returns ErrSealed while sealed and an
// error wrapping ErrDecrypt for a value that does not authenticate.
func (b *Barrier) Decrypt(aad, ciphertext []byte) ([]byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.keyring == nil {
		return nil, ErrSealed
	}
	return b.keyring.Decrypt(aad, ciphertext)
}

// ActiveTerm reports the keyring term new values use, or 0 while sealed.
func (b *Barrier) ActiveTerm() uint32 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.keyring == nil {
		return 0
	}
	return b.keyring.ActiveTerm()
}
