package cluster

import (
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/plugins/bolt"
)

// snapshotStore is Raft's file snapshot store with a count of open readers
// per snapshot. A purge overwrites old snapshots with zeros before it
// removes them; one that Raft is streaming to a follower at that moment
// would reach the follower as zeros (stored there as its newest
// snapshot). So an open snapshot is removed when its last reader closes,
// and a snapshot being removed cannot be opened.
type snapshotStore struct {
	*raft.FileSnapshotStore
	dir string // the store's snapshots/ directory

	mu       sync.Mutex
	open     map[string]int
	removing map[string]bool // being removed now
	pending  map[string]bool // to remove when the last reader closes
}

func newSnapshotStore(dataDir string, s *raft.FileSnapshotStore) *snapshotStore {
	return &snapshotStore{FileSnapshotStore: s, dir: filepath.Join(dataDir, "snapshots"),
		open: map[string]int{}, removing: map[string]bool{}, pending: map[string]bool{}}
}

// Open implements raft.SnapshotStore.
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	s.mu.Lock()
	if s.removing[id] || s.pending[id] {
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("cluster: snapshot %s is being removed", id)
	}
	s.open[id]++
	s.mu.Unlock()
	meta, rc, err := s.FileSnapshotStore.Open(id)
	if err != nil {
		s.closed(id)
		return nil, nil, err
	}
	return meta, &snapshotReader{ReadCloser: rc, close: func() { s.closed(id) }}, nil
}

func (s *snapshotStore) closed(id string) {
	s.mu.Lock()
	s.open[id]--
	remove := s.open[id] == 0 && s.pending[id]
	if s.open[id] == 0 {
		delete(s.open, id)
	}
	if remove {
		delete(s.pending, id)
		s.removing[id] = true
	}
	s.mu.Unlock()
	if remove {
		bolt.RemoveZeroed(filepath.Join(s.dir, id))
		s.mu.Lock()
		delete(s.removing, id)
		s.mu.Unlock()
	}
}

// removeZeroed overwrites with zeros and removes the snapshot directory
// name now, or, while it is open, when its last reader closes.
func (s *snapshotStore) removeZeroed(name string) error {
	s.mu.Lock()
	if s.open[name] > 0 {
		s.pending[name] = true
		s.mu.Unlock()
		return nil
	}
	s.removing[name] = true
	s.mu.Unlock()
	err := bolt.RemoveZeroed(filepath.Join(s.dir, name))
	s.mu.Lock()
	delete(s.removing, name)
	s.mu.Unlock()
	return err
}

type snapshotReader struct {
	io.ReadCloser
	once  sync.Once
	close func()
}

func (r *snapshotReader) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.close)
	return err
}
