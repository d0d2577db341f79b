package store

import (
	"context"
	"errors"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/seal"
)

// Store is what an engine needs from the node (cluster.Node implements
// it): decrypted reads of the local view and conditional commits through
// Raft.
type Store interface {
	// Read returns the decrypted record at key and its revision; a
	// missing record is (nil, 0, nil).
	Read(key string) ([]byte, uint64, error)
	// Revision returns the revision of the record at key without
	// decrypting it (0 when absent): the cheap check of a cached value.
	Revision(key string) (uint64, error)
	// List returns the keys under prefix, without the prefix, in order.
	List(prefix string) ([]string, error)
	// Commit encrypts txn's values and applies it through Raft. It returns
	// the new revision, or ErrSealed, an error matching ErrConflict (read
	// again and retry), or an Apply error.
	Commit(ctx context.Context, txn *Txn) (uint64, error)
}

// Write is one change of a Txn. Value is plaintext: Commit encrypts it
// under the barrier, bound to Key.
type Write struct {
	Key    string
	Value  []byte
	Delete bool
	// Prefix with Delete removes every record under Key.
	Prefix bool
}

// Txn is an atomic change prepared from the local view: it commits only if
// every record in Expect still has the revision it was read at (0 for
// "absent").
type Txn struct {
	Expect []fsm.Cond
	Writes []Write
}

// The errors a Store returns that engines test for with errors.Is. The
// cluster package's variables of the same names are these values.
var (
	// ErrSealed: the node is sealed, so nothing can be decrypted.
	ErrSealed = seal.ErrSealed
	// ErrNotReady is returned by reads while the node is still applying
	// the Raft log it had when it started: until then its state may be
	// older than what it acknowledged before a restart.
	ErrNotReady = errors.New("cluster: node is catching up with the Raft log")
	// ErrConflict matches the error of a Commit whose Expect failed.
	ErrConflict = fsm.ErrConflict
	// ErrInvalidRequest: a change that cannot be made as asked; the
	// wrapping error says why.
	ErrInvalidRequest = errors.New("cluster: invalid request")
	// ErrPermissionDenied: no such token, or it may not do this.
	ErrPermissionDenied = errors.New("permission denied")
)

// PurgeKey is the record whose every write asks each node to purge its
// disk of what the state no longer holds (fsm.RecordPurge; cluster's
// purge loop does it).
const PurgeKey = fsm.RecordPurge

// PurgeWrite is the write a change adds when it removes key material (a
// key's destruction): once it is applied, every node takes a snapshot,
// compacts its Raft log past it, deletes older snapshots and rewrites its
// bbolt files without their freed pages. what names the change (not a
// secret).
func PurgeWrite(what string) Write { return Write{Key: PurgeKey, Value: []byte(what)} }

// RaftIndexer is implemented by a Store that knows its Raft indexes
// (cluster.Node).
type RaftIndexer interface {
	RaftIndexes() (committed, applied uint64)
}

// AppliedIndex returns s's Raft applied index, or 0 when s does not know
// it (a test's in-memory store): a Cache then checks every revision.
func AppliedIndex(s any) uint64 {
	if ri, ok := s.(RaftIndexer); ok {
		_, a := ri.RaftIndexes()
		return a
	}
	return 0
}
