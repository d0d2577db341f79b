// Package storetest is an in-memory store.Store with the node's
// compare-and-set semantics, for the tests of the engines that run over a
// Store (transit, access, the HTTP pipeline) without Raft. The cluster
// package's tests are the real store's.
package storetest

import (
	"context"
	"sort"
	"strings"
	"sync"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// Mem is an in-memory Store: every Commit is one applied entry, so the
// revision of a record is the index of the commit that wrote it.
type Mem struct {
	// OnRead, when set, runs at the start of every Read (to interleave
	// another change with a load). Set it before the store is shared.
	OnRead func()

	mu     sync.Mutex
	rev    uint64
	recs   map[string]rec
	sealed bool
}

type rec struct {
	val []byte
	rev uint64
}

// New returns an empty, unsealed Mem.
func New() *Mem { return &Mem{recs: map[string]rec{}} }

// Read returns a copy of the record at key; ErrSealed while sealed.
func (m *Mem) Read(key string) ([]byte, uint64, error) {
	if m.OnRead != nil {
		m.OnRead()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sealed {
		return nil, 0, store.ErrSealed
	}
	r, ok := m.recs[key]
	if !ok {
		return nil, 0, nil
	}
	return append([]byte(nil), r.val...), r.rev, nil
}

// Revision returns the revision of the record at key (0: absent).
func (m *Mem) Revision(key string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recs[key].rev, nil
}

// List returns the keys under prefix, without it, in order.
func (m *Mem) List(prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.recs {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out, nil
}

// RaftIndexes makes Mem look like a node whose every commit is applied.
func (m *Mem) RaftIndexes() (committed, applied uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev, m.rev
}

// Commit applies txn if every Expect holds, as the state machine does.
func (m *Mem) Commit(_ context.Context, txn *store.Txn) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sealed {
		return 0, store.ErrSealed
	}
	for _, c := range txn.Expect {
		if m.recs[c.Key].rev != c.Revision {
			return 0, &fsm.ConflictError{Key: c.Key}
		}
	}
	m.rev++
	for _, w := range txn.Writes {
		switch {
		case w.Delete && w.Prefix:
			for k := range m.recs {
				if strings.HasPrefix(k, w.Key) {
					delete(m.recs, k)
				}
			}
		case w.Delete:
			delete(m.recs, w.Key)
		default:
			m.recs[w.Key] = rec{append([]byte(nil), w.Value...), m.rev}
		}
	}
	return m.rev, nil
}

// Get returns the raw record at key and its revision, sealed or not.
func (m *Mem) Get(key string) ([]byte, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[key]
	return append([]byte(nil), r.val...), r.rev
}

// Put writes a record as one commit of its own, bypassing every check
// (a record an older version wrote, a corrupt one). It returns the
// record's revision.
func (m *Mem) Put(key string, val []byte) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	m.recs[key] = rec{append([]byte(nil), val...), m.rev}
	return m.rev
}

// Index is the number of commits so far (Put included).
func (m *Mem) Index() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev
}

// SetSealed seals or unseals the store: sealed, Read and Commit fail
// with store.ErrSealed.
func (m *Mem) SetSealed(v bool) {
	m.mu.Lock()
	m.sealed = v
	m.mu.Unlock()
}
