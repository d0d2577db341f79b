package bolt

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/keyraft/keyraft/plugins"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func keys(t *testing.T, r plugins.Reader, prefix string) []string {
	t.Helper()
	var out []string
	if err := r.Scan([]byte(prefix), func(k, _ []byte) error {
		out = append(out, string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteScanDeletePrefix(t *testing.T) {
	s, path := open(t)
	put := func(k, v string) plugins.Mutation {
		return plugins.Mutation{Kind: plugins.Put, Key: []byte(k), Value: []byte(v)}
	}
	if err := s.Write([]plugins.Mutation{put("k/b", "2"), put("k/a", "1"), put("k/c/x", "3"), put("z", "4")}); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, s, "k/"); len(got) != 3 || got[0] != "k/a" || got[2] != "k/c/x" {
		t.Fatalf("scan = %v", got)
	}
	view, err := s.View()
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	if err := s.Write([]plugins.Mutation{
		{Kind: plugins.DeletePrefix, Key: []byte("k/")},
		{Kind: plugins.Delete, Key: []byte("missing")},
	}); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, s, "k/"); len(got) != 0 {
		t.Fatalf("after delete prefix: %v", got)
	}
	if got := keys(t, view, "k/"); len(got) != 3 {
		t.Fatalf("view changed under a write: %v", got)
	}
	if v, _ := view.Get([]byte("k/a")); string(v) != "1" {
		t.Fatalf("view get = %q", v)
	}
	view.Close()

	// A batch with a bad mutation leaves nothing behind.
	err = s.Write([]plugins.Mutation{put("new", "x"), {Kind: 99, Key: []byte("q")}})
	if err == nil {
		t.Fatal("bad batch accepted")
	}
	if v, _ := s.Get([]byte("new")); v != nil {
		t.Fatal("partial write of a failed batch")
	}

	// Durable across reopen.
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v, _ := s2.Get([]byte("z")); string(v) != "4" {
		t.Fatalf("after reopen z = %q", v)
	}
	if _, err := s.Get([]byte("z")); !errors.Is(err, plugins.ErrStorageClosed) {
		t.Fatalf("closed store: %v", err)
	}
}

func TestScanFrom(t *testing.T) {
	s, _ := open(t)
	var batch []plugins.Mutation
	for _, k := range []string{"a/1", "a/2", "a/3", "b/1"} {
		batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: []byte(k), Value: []byte("v")})
	}
	s.Write(batch)
	var got []string
	s.ScanFrom([]byte("a/"), []byte("a/2"), func(k, _ []byte) error { got = append(got, string(k)); return nil })
	if len(got) != 2 || got[0] != "a/2" || got[1] != "a/3" {
		t.Fatalf("ScanFrom a/2 = %v", got)
	}
	got = nil
	s.ScanFrom([]byte("a/"), []byte("0"), func(k, _ []byte) error { got = append(got, string(k)); return nil })
	if len(got) != 3 {
		t.Fatalf("from before the prefix = %v", got)
	}
}

func TestDeleteRange(t *testing.T) {
	s, _ := open(t)
	var batch []plugins.Mutation
	for _, k := range []string{"e/1", "e/2", "e/3", "e/4", "f"} {
		batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: []byte(k), Value: []byte("v")})
	}
	s.Write(batch)
	if err := s.Write([]plugins.Mutation{{Kind: plugins.DeleteRange, Key: []byte("e/2"), Value: []byte("e/4")}}); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, s, ""); len(got) != 3 || got[0] != "e/1" || got[1] != "e/4" || got[2] != "f" {
		t.Fatalf("after DeleteRange [e/2, e/4): %v", got)
	}
}
