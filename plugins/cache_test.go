package plugins_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/bolt"
	"github.com/keyraft/keyraft/plugins/conformance"
)

func openCachedBolt(t *testing.T, maxBytes int) plugins.Storage {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	c := plugins.Cached(s, maxBytes)
	t.Cleanup(func() { c.Close() })
	return c
}

// The cache keeps every rule of the storage contract (a roomy cache and
// one so small that it evicts all the time).
func TestCachedStorageConformance(t *testing.T) {
	for _, size := range []int{1 << 20, 2048} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			conformance.TestStorage(t, func(t *testing.T) plugins.Storage { return openCachedBolt(t, size) })
		})
	}
}

func TestCachedStorageSeesEveryWrite(t *testing.T) {
	s := openCachedBolt(t, 1<<20)
	get := func(k string) string {
		v, err := s.Get([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if v == nil {
			return "<absent>"
		}
		return string(v)
	}
	put := func(ms ...plugins.Mutation) {
		if err := s.Write(ms); err != nil {
			t.Fatal(err)
		}
	}
	m := func(kind plugins.MutationKind, k, v string) plugins.Mutation {
		return plugins.Mutation{Kind: kind, Key: []byte(k), Value: []byte(v)}
	}
	if get("a/1") != "<absent>" { // cached as absent
		t.Fatal("a/1 exists")
	}
	put(m(plugins.Put, "a/1", "one"), m(plugins.Put, "a/2", "two"), m(plugins.Put, "b/1", "bee"))
	if get("a/1") != "one" || get("a/2") != "two" || get("b/1") != "bee" {
		t.Fatal("puts not seen")
	}
	put(m(plugins.Put, "a/1", "uno"))
	if get("a/1") != "uno" {
		t.Fatal("overwrite not seen")
	}
	put(m(plugins.DeletePrefix, "a/", ""))
	if get("a/1") != "<absent>" || get("a/2") != "<absent>" || get("b/1") != "bee" {
		t.Fatal("prefix delete not seen")
	}
	put(m(plugins.Put, "c/1", "x"), m(plugins.Put, "c/5", "y"), m(plugins.Put, "c/9", "z"))
	get("c/1")
	get("c/5")
	get("c/9")
	put(m(plugins.DeleteRange, "c/1", "c/9"))
	if get("c/1") != "<absent>" || get("c/5") != "<absent>" || get("c/9") != "z" {
		t.Fatal("range delete not seen")
	}
	put(m(plugins.Delete, "c/9", ""))
	if get("c/9") != "<absent>" {
		t.Fatal("delete not seen")
	}
	// Returned slices belong to the caller.
	v, _ := s.Get([]byte("b/1"))
	v[0] = 'X'
	if get("b/1") != "bee" {
		t.Fatal("a caller's change reached the cache")
	}
}

// Readers racing with the single writer never see a value older than
// the last write that completed before their read began.
func TestCachedStorageReadersRacingTheWriter(t *testing.T) {
	s := openCachedBolt(t, 1<<20)
	var done atomic.Int64 // last value whose write completed
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := done.Load()
				v, err := s.Get([]byte("k"))
				if err != nil {
					errs <- err
					return
				}
				var got int64
				if v != nil {
					fmt.Sscan(string(v), &got)
				}
				if got < before {
					errs <- fmt.Errorf("read %d after write %d completed", got, before)
					return
				}
			}
		}()
	}
	for i := int64(1); i <= 500; i++ {
		if err := s.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte("k"), Value: []byte(fmt.Sprint(i))}}); err != nil {
			t.Fatal(err)
		}
		done.Store(i)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, _ := s.Get([]byte("k")); !bytes.Equal(v, []byte("500")) {
		t.Fatalf("final value %q", v)
	}
}
