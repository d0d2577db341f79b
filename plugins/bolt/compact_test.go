package bolt

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyraft/keyraft/plugins"
)

// bbolt keeps an overwritten value in its freed pages; Compact leaves
// only the live records in the file, and the store keeps working.
func TestCompactRemovesFreedValues(t *testing.T) {
	s, path := open(t)
	secret := make([]byte, 4096) // a page of its own, as a key record is
	rand.Read(secret)
	live := []byte("live value that must survive")
	if err := s.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte("k"), Value: secret},
		{Kind: plugins.Put, Key: []byte("keep"), Value: live}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte("k"), Value: []byte("destroyed")}}); err != nil {
		t.Fatal(err)
	}
	fileHas := func(b []byte) bool {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(raw, b)
	}
	if !fileHas(secret) {
		t.Skip("this bbolt reused the freed page already; nothing to show") // not expected with bbolt 1.x
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if fileHas(secret) {
		t.Fatal("the overwritten value is still in the file after Compact")
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("temporary copy left behind: %v", err)
	}
	for k, want := range map[string][]byte{"k": []byte("destroyed"), "keep": live} {
		if v, err := s.Get([]byte(k)); err != nil || !bytes.Equal(v, want) {
			t.Fatalf("after Compact %s = %q, %v", k, v, err)
		}
	}
	if err := s.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte("after"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	// The compacted file opens as a store again.
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v, _ := s2.Get([]byte("after")); string(v) != "1" {
		t.Fatalf("write after Compact lost: %q", v)
	}
}

// Compact waits for an open view, which keeps reading the old file's
// consistent picture until it is closed.
func TestCompactWaitsForViews(t *testing.T) {
	s, _ := open(t)
	s.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte("a"), Value: []byte("1")}})
	v, err := s.View()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Compact() }()
	select {
	case err := <-done:
		t.Fatalf("Compact returned with a view open: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if got, err := v.Get([]byte("a")); err != nil || string(got) != "1" {
		t.Fatalf("view during Compact: %q %v", got, err)
	}
	v.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Compact did not finish after the view closed")
	}
	if got, _ := s.Get([]byte("a")); string(got) != "1" {
		t.Fatalf("after Compact: %q", got)
	}
}

// BenchmarkCompact64MiB compacts a store of 64 MiB of live records (16 Ki
// records of 4 KiB) with as much freed space; the time is what a purge
// holds the state store for.
func BenchmarkCompact64MiB(b *testing.B) {
	s, err := Open(b.TempDir() + "/state.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	val := make([]byte, 4096)
	for round := range 2 { // the second round frees the first's pages
		for i := 0; i < 16<<10; i += 1024 {
			var batch []plugins.Mutation
			for j := i; j < i+1024; j++ {
				rand.Read(val[:16])
				val[16] = byte(round)
				batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: []byte(fmt.Sprintf("k/%08d", j)), Value: bytes.Clone(val)})
			}
			if err := s.Write(batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetBytes(64 << 20)
	b.ResetTimer()
	for range b.N {
		if err := s.Compact(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCompactAfterClose(t *testing.T) {
	s, _ := open(t)
	s.Close()
	if err := s.Compact(); !errors.Is(err, plugins.ErrStorageClosed) {
		t.Fatalf("Compact after Close: %v", err)
	}
	if _, err := s.Get([]byte("k")); !errors.Is(err, plugins.ErrStorageClosed) {
		t.Fatalf("the store reopened: Get after Close and Compact: %v", err)
	}
}

// A copy left by a crashed compaction holds the records of its time: the
// next Compact overwrites its contents before removing it. A second link
// to the file (standing for the blocks a plain unlink leaves behind)
// shows what the removal left.
func TestCompactZeroesLeftoverCopy(t *testing.T) {
	s, path := open(t)
	if err := s.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte("a"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 4096)
	rand.Read(secret)
	if err := os.WriteFile(path+".compact", secret, 0o600); err != nil {
		t.Fatal(err)
	}
	witness := filepath.Join(t.TempDir(), "witness")
	if err := os.Link(path+".compact", witness); err != nil {
		t.Skipf("hard links unsupported here: %v", err)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(witness)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != len(secret) || !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatalf("the leftover copy was removed without being overwritten (%d bytes, still holds the secret: %v)", len(b), bytes.Contains(b, secret[:64]))
	}
}

// RemoveZeroed overwrites every file of a directory tree, then removes it.
func TestRemoveZeroed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snap")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	secret := []byte("old ciphertext, old ciphertext")
	witnesses := t.TempDir()
	for i, p := range []string{filepath.Join(dir, "state.bin"), filepath.Join(dir, "sub", "meta.json")} {
		if err := os.WriteFile(p, secret, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(p, filepath.Join(witnesses, fmt.Sprint(i))); err != nil {
			t.Skipf("hard links unsupported here: %v", err)
		}
	}
	if err := RemoveZeroed(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the directory is still there: %v", err)
	}
	for i := range 2 {
		b, _ := os.ReadFile(filepath.Join(witnesses, fmt.Sprint(i)))
		if !bytes.Equal(b, make([]byte, len(secret))) {
			t.Fatalf("file %d not overwritten: %q", i, b)
		}
	}
	if err := RemoveZeroed(dir); err != nil {
		t.Fatalf("removing a missing path: %v", err)
	}
}
