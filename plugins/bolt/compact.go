package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyraft/keyraft/plugins"
)

// Compact implements plugins.Compactor. bbolt never overwrites a freed
// page until it reuses it, so a record's old values (ciphertext of key
// material that was destroyed) stay readable in the file. Compact copies
// the live records into a fresh file, renames it over the old one and
// overwrites the old file's contents with zeros, so nothing but the live
// records remains. Reads and writes wait meanwhile; open views are waited
// for (bbolt closes a file only when its read transactions end).
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return plugins.ErrStorageClosed
	}
	if err := CompactFile(s.path, s.db, func() error { return s.db.Close() }); err != nil {
		// The old file is still in place; open it again.
		if db, oerr := bbolt.Open(s.path, 0o600, options()); oerr == nil {
			s.db = db
		}
		return err
	}
	db, err := bbolt.Open(s.path, 0o600, options())
	if err != nil {
		// s.db stays the closed file: every call fails with
		// ErrStorageClosed rather than reading a half-made state.
		return fmt.Errorf("storage: reopening %s after compaction: %w", s.path, err)
	}
	s.db = db
	return nil
}

// CompactFile copies the live data of src (open on path) into a fresh file,
// calls closeSrc, renames the copy over path and overwrites the replaced
// file with zeros before it goes. If it fails before the rename, path is
// untouched (closeSrc may have run). The Raft log store uses it too.
func CompactFile(path string, src *bbolt.DB, closeSrc func() error) error {
	tmp := path + ".compact"
	// A copy left by a crash holds the live records of its time, and so
	// values destroyed since: overwrite it before it goes.
	if err := RemoveZeroed(tmp); err != nil {
		return fmt.Errorf("storage: compacting %s: removing an old copy: %w", path, err)
	}
	dst, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: options().Timeout})
	if err != nil {
		return fmt.Errorf("storage: compacting %s: %w", path, err)
	}
	if err := bbolt.Compact(dst, src, 64<<20); err != nil {
		dst.Close()
		RemoveZeroed(tmp)
		return fmt.Errorf("storage: compacting %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		RemoveZeroed(tmp)
		return fmt.Errorf("storage: compacting %s: %w", path, err)
	}
	if err := closeSrc(); err != nil {
		RemoveZeroed(tmp)
		return fmt.Errorf("storage: compacting %s: closing: %w", path, err)
	}
	// Keep the old inode open across the rename to zero it afterwards: a
	// crash before the rename leaves the old file whole, one after it the
	// new file in place.
	old, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		RemoveZeroed(tmp)
		return fmt.Errorf("storage: compacting %s: %w", path, err)
	}
	defer old.Close()
	if err := os.Rename(tmp, path); err != nil {
		RemoveZeroed(tmp)
		return fmt.Errorf("storage: compacting %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return zeroFile(old)
}

// RemoveZeroed overwrites every regular file at or under path with zeros,
// syncs it, and then removes path (a file or a whole directory). A
// missing path is not an error. Removing alone would leave the contents in
// the file system's free blocks and in every other link to the file.
func RemoveZeroed(path string) error {
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("storage: overwriting %s: %w", p, err)
		}
		zerr := zeroFile(f)
		if cerr := f.Close(); zerr == nil {
			zerr = cerr
		}
		return zerr
	})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// zeroFile overwrites f's contents with zeros and syncs them. The file
// system may still keep old blocks elsewhere (journals, copy-on-write);
// this removes what a read of the disk through the file system finds.
func zeroFile(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < st.Size(); off += int64(len(zeros)) {
		n := min(int64(len(zeros)), st.Size()-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("storage: overwriting the replaced file: %w", err)
		}
	}
	return f.Sync()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
