package plugins

import "errors"

// ErrStorageClosed is returned by every Storage method after Close.
var ErrStorageClosed = errors.New("storage: closed")

// MutationKind says what a Mutation does.
type MutationKind uint8

const (
	// Put sets Key to Value.
	Put MutationKind = 1
	// Delete removes Key; deleting a missing key is not an error.
	Delete MutationKind = 2
	// DeletePrefix removes every key that starts with Key.
	DeletePrefix MutationKind = 3
	// DeleteRange removes every key k with Key <= k < Value.
	DeleteRange MutationKind = 4
)

// Mutation is one change in a batch.
type Mutation struct {
	Kind  MutationKind
	Key   []byte
	Value []byte
}

// Reader reads an ordered byte key-value space.
type Reader interface {
	// Get returns the value at key, or nil and no error when it is absent.
	// The returned slice belongs to the caller.
	Get(key []byte) ([]byte, error)
	// Scan calls fn for every key with the prefix, in ascending byte order,
	// until fn returns an error (which Scan returns). The slices passed to
	// fn are valid only during the call.
	Scan(prefix []byte, fn func(key, value []byte) error) error
	// ScanFrom is Scan starting at the first key >= from (within prefix).
	ScanFrom(prefix, from []byte, fn func(key, value []byte) error) error
}

// View is a consistent, read-only picture of the storage at one moment,
// used to stream a Raft snapshot while writes go on.
type View interface {
	Reader
	// Close releases the view.
	Close() error
}

// Storage is the contract of a storage backend: an ordered byte KV with
// atomic batched writes and consistent views. The state machine is its
// only writer and writes only barrier ciphertext values.
type Storage interface {
	Reader
	// Write applies the batch atomically and durably: after it returns nil
	// every mutation survives a crash; after an error none is visible.
	Write(batch []Mutation) error
	// View opens a consistent read-only view.
	View() (View, error)
	// Close releases the storage. Later calls return ErrStorageClosed.
	Close() error
}

// HeadReader is an optional ability of a Storage: reading only the first
// n bytes of a value, so a caller that needs a record's header does not
// copy a large value.
type HeadReader interface {
	// GetHead returns at most the first n bytes of the value at key, or
	// nil and no error when it is absent.
	GetHead(key []byte, n int) ([]byte, error)
}

// Compactor is an optional ability of a Storage: rewriting its files so
// that no deleted or overwritten value remains in them. Stores that keep
// freed space with old contents (bbolt, most B-trees and LSM trees) need
// it for "destroyed means gone": after a key's destruction the node calls
// Compact, and afterwards no file of the store may hold the key's old
// records, even encrypted. Reads and writes may wait while it runs; open
// views stay valid. A Storage without this ability cannot promise that.
type Compactor interface {
	Compact() error
}

// Aborter is an optional ability of a Storage that waits for its backend
// to come back (a plugin being restarted): Abort tells it that the node
// is shutting down, so it stops waiting soon instead of holding the
// shutdown forever.
type Aborter interface {
	Abort()
}

// ErrUnsupported is returned by an optional ability (Compact) that the
// backend behind a Storage does not have.
var ErrUnsupported = errors.New("storage: not supported by this backend")
