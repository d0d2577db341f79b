// Package bolt is the default storage backend: one bbolt file in the
// node's data directory, with every record in a single bucket so that
// prefix scans are ordered byte ranges.
package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyraft/keyraft/plugins"
)

var bucket = []byte("records")

// Store implements plugins.Storage on a bbolt file.
type Store struct {
	// mu guards db, which Compact replaces: every call holds it shared.
	mu     sync.RWMutex
	db     *bbolt.DB
	path   string
	closed bool // Compact must not reopen a closed store
}

var (
	_ plugins.Storage   = (*Store)(nil)
	_ plugins.Compactor = (*Store)(nil)
)

// options are the bbolt options of every file the store opens.
func options() *bbolt.Options {
	// A large initial mmap (address space, not memory) keeps bbolt from
	// remapping while a snapshot View is open: a remap waits for every
	// read transaction, which would stall Raft applies behind a snapshot.
	return &bbolt.Options{Timeout: 5 * time.Second, InitialMmapSize: 1 << 30}
}

// Open opens (creating if needed) the bbolt file at path. The file is
// created with mode 0600: it holds only ciphertext values, but its keys
// name the records.
func Open(path string) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, options())
	if err != nil {
		return nil, fmt.Errorf("storage: opening %s: %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: preparing %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Get implements plugins.Reader.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucket).Get(key); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	return out, mapErr(err)
}

// GetHead implements plugins.HeadReader.
func (s *Store) GetHead(key []byte, n int) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucket).Get(key); v != nil {
			out = bytes.Clone(v[:min(n, len(v))])
		}
		return nil
	})
	return out, mapErr(err)
}

// Scan implements plugins.Reader.
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return s.ScanFrom(prefix, nil, fn)
}

// ScanFrom implements plugins.Reader.
func (s *Store) ScanFrom(prefix, from []byte, fn func(key, value []byte) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return mapErr(s.db.View(func(tx *bbolt.Tx) error { return scan(tx, prefix, from, fn) }))
}

func scan(tx *bbolt.Tx, prefix, from []byte, fn func(key, value []byte) error) error {
	c := tx.Bucket(bucket).Cursor()
	start := prefix
	if bytes.Compare(from, prefix) > 0 {
		start = from
	}
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Write implements plugins.Storage. The whole batch is one bbolt
// transaction, fsynced before Write returns.
func (s *Store) Write(batch []plugins.Mutation) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return mapErr(s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, m := range batch {
			switch m.Kind {
			case plugins.Put:
				if len(m.Key) == 0 {
					return errors.New("storage: empty key")
				}
				if err := b.Put(m.Key, m.Value); err != nil {
					return err
				}
			case plugins.Delete:
				if err := b.Delete(m.Key); err != nil {
					return err
				}
			case plugins.DeletePrefix:
				c := b.Cursor()
				for k, _ := c.Seek(m.Key); k != nil && bytes.HasPrefix(k, m.Key); k, _ = c.Seek(m.Key) {
					if err := c.Delete(); err != nil {
						return err
					}
				}
			case plugins.DeleteRange:
				c := b.Cursor()
				for k, _ := c.Seek(m.Key); k != nil && bytes.Compare(k, m.Value) < 0; k, _ = c.Seek(m.Key) {
					if err := c.Delete(); err != nil {
						return err
					}
				}
			default:
				return fmt.Errorf("storage: unknown mutation kind %d", m.Kind)
			}
		}
		return nil
	}))
}

// View implements plugins.Storage with a read-only bbolt transaction,
// which sees one consistent version of the file while writers continue.
func (s *Store) View() (plugins.View, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, mapErr(err)
	}
	return &view{tx: tx}, nil
}

// Close implements plugins.Storage.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.db.Close()
}

type view struct{ tx *bbolt.Tx }

func (v *view) Get(key []byte) ([]byte, error) {
	return bytes.Clone(v.tx.Bucket(bucket).Get(key)), nil
}

func (v *view) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return scan(v.tx, prefix, nil, fn)
}

func (v *view) ScanFrom(prefix, from []byte, fn func(key, value []byte) error) error {
	return scan(v.tx, prefix, from, fn)
}

func (v *view) Close() error { return v.tx.Rollback() }

func mapErr(err error) error {
	if errors.Is(err, bbolt.ErrDatabaseNotOpen) {
		return plugins.ErrStorageClosed
	}
	return err
}
