package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"
)

// Barrier ciphertext layout, version 1:
//
//	0x01 | term (4 bytes, big endian) | nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// The caller's associated data (the storage path of the value) is bound
// into the tag, so a value copied to another path does not decrypt.
const (
	barrierVersion  = 1
	termSize        = 4
	nonceSize       = 12
	tagSize         = 16
	keySize         = 32
	barrierOverhead = 1 + termSize + nonceSize + tagSize
)

var (
	// ErrSealed is returned by barrier operations while no keyring is loaded.
	ErrSealed = errors.New("seal: barrier is sealed")
	// ErrDecrypt is returned when a value or blob fails to authenticate,
	// was made with a term the keyring does not have, or is malformed.
	ErrDecrypt = errors.New("seal: decryption failed")
)

// Term is one generation of the barrier keyring.
type Term struct {
	Number    uint32    `json:"term"`
	Key       []byte    `json:"key"`
	Installed time.Time `json:"installed"`
}

// Keyring holds the barrier's terms. New values are encrypted with the
// active (newest) term; every term stays available for decryption.
// A Keyring is not safe for concurrent mutation; Barrier guards it.
type Keyring struct {
	terms  map[uint32]*Term
	active uint32
	aeads  map[uint32]cipher.AEAD
	// encryptions counts Encrypt calls under the active term since this
	// keyring was loaded (Vault's key-status "encryptions", per node).
	encryptions atomic.Uint64
}

// NewKeyring returns a keyring with one fresh term, number 1.
func NewKeyring(now time.Time) (*Keyring, error) {
	k := &Keyring{terms: map[uint32]*Term{}, aeads: map[uint32]cipher.AEAD{}}
	if _, err := k.AddTerm(now); err != nil {
		return nil, err
	}
	return k, nil
}

// AddTerm installs a fresh random term and makes it active.
func (k *Keyring) AddTerm(now time.Time) (uint32, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return 0, fmt.Errorf("seal: reading randomness: %w", err)
	}
	n := k.active + 1
	if err := k.install(&Term{Number: n, Key: key, Installed: now.UTC()}); err != nil {
		return 0, err
	}
	k.active = n
	return n, nil
}

func (k *Keyring) install(t *Term) error {
	if len(t.Key) != keySize {
		return fmt.Errorf("seal: keyring term %d has a %d-byte key, want %d", t.Number, len(t.Key), keySize)
	}
	aead, err := newGCM(t.Key)
	if err != nil {
		return err
	}
	k.terms[t.Number] = t
	k.aeads[t.Number] = aead
	return nil
}

// ActiveTerm is the term new values are encrypted with.
func (k *Keyring) ActiveTerm() uint32 { return k.active }

// Terms lists the installed term numbers in ascending order.
func (k *Keyring) Terms() []uint32 {
	out := make([]uint32, 0, len(k.terms))
	for n := range k.terms {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Encrypt seals plaintext under the active term, bound to aad.
func (k *Keyring) Encrypt(aad, plaintext []byte) ([]byte, error) {
	aead := k.aeads[k.active]
	if aead == nil {
		return nil, ErrSealed
	}
	k.encryptions.Add(1)
	out := make([]byte, 1+termSize+nonceSize, barrierOverhead+len(plaintext))
	out[0] = barrierVersion
	binary.BigEndian.PutUint32(out[1:], k.active)
	nonce := out[1+termSize:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	return aead.Seal(out, nonce, plaintext, aad), nil
}

// Decrypt opens a value made by Encrypt with the same aad.
func (k *Keyring) Decrypt(aad, ciphertext []byte) ([]byte, error) {
	term, err := CiphertextTerm(ciphertext)
	if err != nil {
		return nil, err
	}
	aead := k.aeads[term]
	if aead == nil {
		return nil, fmt.Errorf("%w: unknown keyring term %d", ErrDecrypt, term)
	}
	nonce := ciphertext[1+termSize : 1+termSize+nonceSize]
	pt, err := aead.Open(nil, nonce, ciphertext[1+termSize+nonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: message authentication failed", ErrDecrypt)
	}
	return pt, nil
}

// CiphertextTerm reports which keyring term encrypted a barrier value.
func CiphertextTerm(ciphertext []byte) (uint32, error) {
	if len(ciphertext) < barrierOverhead {
		return 0, fmt.Errorf("%w: value too short", ErrDecrypt)
	}
	if ciphertext[0] != barrierVersion {
		return 0, fmt.Errorf("%w: unknown barrier format %d", ErrDecrypt, ciphertext[0])
	}
	return binary.BigEndian.Uint32(ciphertext[1:]), nil
}

// Zero overwrites every term key. The keyring is unusable afterwards.
func (k *Keyring) Zero() {
	for _, t := range k.terms {
		clear(t.Key)
	}
	k.terms = map[uint32]*Term{}
	k.aeads = map[uint32]cipher.AEAD{}
	k.active = 0
}

type keyringJSON struct {
	Active uint32  `json:"active"`
	Terms  []*Term `json:"terms"`
}

// marshal encodes the keyring in the clear; only wrapKeyring calls it, and
// the bytes are zeroed after encryption.
func (k *Keyring) marshal() ([]byte, error) {
	kj := keyringJSON{Active: k.active}
	for _, n := range k.Terms() {
		kj.Terms = append(kj.Terms, k.terms[n])
	}
	return json.Marshal(kj)
}

func unmarshalKeyring(b []byte) (*Keyring, error) {
	var kj keyringJSON
	if err := json.Unmarshal(b, &kj); err != nil {
		return nil, fmt.Errorf("%w: keyring: %v", ErrDecrypt, err)
	}
	k := &Keyring{terms: map[uint32]*Term{}, aeads: map[uint32]cipher.AEAD{}}
	for _, t := range kj.Terms {
		if t == nil || t.Number == 0 {
			return nil, fmt.Errorf("%w: keyring has an invalid term", ErrDecrypt)
		}
		if _, dup := k.terms[t.Number]; dup {
			return nil, fmt.Errorf("%w: keyring has term %d twice", ErrDecrypt, t.Number)
		}
		if err := k.install(t); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
		}
	}
	if _, ok := k.terms[kj.Active]; !ok {
		return nil, fmt.Errorf("%w: keyring active term %d is missing", ErrDecrypt, kj.Active)
	}
	k.active = kj.Active
	return k, nil
}

var (
	keyringAAD = []byte("keyraft/keyring/v1")
	rootKeyAAD = []byte("keyraft/root-key/v1")
)

// WrapKeyring encrypts the keyring under the root key, for storage.
func WrapKeyring(rootKey []byte, k *Keyring) ([]byte, error) {
	pt, err := k.marshal()
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return gcmSeal(rootKey, keyringAAD, pt)
}

// UnwrapKeyring decrypts a keyring made by WrapKeyring.
func UnwrapKeyring(rootKey, blob []byte) (*Keyring, error) {
	pt, err := gcmOpen(rootKey, keyringAAD, blob)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return unmarshalKeyring(pt)
}

// NewRootKey returns 32 fresh random bytes.
func NewRootKey() ([]byte, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	return key, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}

// gcmSeal encrypts with a random nonce: nonce | ciphertext | tag.
func gcmSeal(key, aad, plaintext []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	return aead.Seal(out, out[:nonceSize], plaintext, aad), nil
}

func gcmOpen(key, aad, blob []byte) ([]byte, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("%w: key is %d bytes, want %d", ErrDecrypt, len(key), keySize)
	}
	if len(blob) < nonceSize+tagSize {
		return nil, fmt.Errorf("%w: blob too short", ErrDecrypt)
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, blob[:nonceSize], blob[nonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: message authentication failed", ErrDecrypt)
	}
	return pt, nil
}
