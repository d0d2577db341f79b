package cluster

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bbolt "go.etcd.io/bbolt"

	"github.com/keyraft/keyraft/plugins/bolt"
)

// logStore is raft-boltdb's store (raft.db: the Raft log and stable
// store) behind a lock, so that Compact can swap the file for a freshly
// written copy. Raft deletes compacted log entries with DeleteRange, but
// bbolt keeps the freed pages — entries that carried a destroyed key's
// record — until it reuses them; Compact leaves only the live entries and
// stable keys in the file.
type logStore struct {
	mu     sync.RWMutex
	opts   raftboltdb.Options
	s      *raftboltdb.BoltStore
	closed bool // Compact must not reopen a store the node closed
}

var (
	_ raft.LogStore    = (*logStore)(nil)
	_ raft.StableStore = (*logStore)(nil)
)

func openLogStore(opts raftboltdb.Options) (*logStore, error) {
	s, err := raftboltdb.New(opts)
	if err != nil {
		return nil, err
	}
	return &logStore{opts: opts, s: s}, nil
}

// Compact rewrites raft.db without its freed pages; Raft's calls wait
// meanwhile. If the copy fails the old file is opened again.
func (l *logStore) Compact() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.s.Close(); err != nil {
		return fmt.Errorf("cluster: closing the raft log for compaction: %w", err)
	}
	raw, err := bbolt.Open(l.opts.Path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err == nil {
		err = bolt.CompactFile(l.opts.Path, raw, raw.Close)
		if err != nil {
			raw.Close() // a no-op when CompactFile closed it already
		}
	}
	s, oerr := raftboltdb.New(l.opts)
	if oerr != nil {
		// Nothing can serve Raft now; every call fails until restart.
		return fmt.Errorf("cluster: reopening the raft log after compaction: %w", oerr)
	}
	l.s = s
	if err != nil {
		return fmt.Errorf("cluster: compacting the raft log: %w", err)
	}
	return nil
}

// Close closes the store.
func (l *logStore) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.s.Close()
}

func (l *logStore) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.FirstIndex()
}

func (l *logStore) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.LastIndex()
}

func (l *logStore) GetLog(index uint64, log *raft.Log) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.GetLog(index, log)
}

func (l *logStore) StoreLog(log *raft.Log) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.StoreLog(log)
}

func (l *logStore) StoreLogs(logs []*raft.Log) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.StoreLogs(logs)
}

func (l *logStore) DeleteRange(min, max uint64) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.DeleteRange(min, max)
}

func (l *logStore) Set(k, v []byte) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.Set(k, v)
}

func (l *logStore) Get(k []byte) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.Get(k)
}

func (l *logStore) SetUint64(k []byte, v uint64) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.SetUint64(k, v)
}

func (l *logStore) GetUint64(k []byte) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.GetUint64(k)
}
