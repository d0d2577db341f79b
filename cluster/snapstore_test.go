package cluster

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// A snapshot that Raft is streaming (to a follower) is not overwritten by
// a purge under the reader: it is removed, zeroed, when the reader
// closes, and cannot be opened again meanwhile.
func TestSnapshotRemovedOnlyAfterItsReaderCloses(t *testing.T) {
	dir := t.TempDir()
	fs, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	s := newSnapshotStore(dir, fs)
	content := bytes.Repeat([]byte("old key material "), 4096)
	sink, err := s.Create(raft.SnapshotVersionMax, 10, 2, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink.Write(content)
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	id := sink.ID()
	_, rc, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.removeZeroed(id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(id); err == nil {
		t.Fatal("a snapshot waiting for removal could be opened")
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the reader saw %d bytes (%v), want the snapshot intact", len(got), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "snapshots", id)); err != nil {
		t.Fatalf("the snapshot went while its reader was open: %v", err)
	}
	rc.Close()
	if _, err := os.Stat(filepath.Join(dir, "snapshots", id)); !os.IsNotExist(err) {
		t.Fatalf("the snapshot is still there after its reader closed: %v", err)
	}
}
