package store

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeRecord is one record and the applied index of a fake node.
type fakeRecord struct {
	mu      sync.Mutex
	applied uint64
	rev     uint64   // 0: absent
	history []uint64 // history[i]: the record's revision at applied index i
	reads   atomic.Int64
	loads   atomic.Int64
}

func (f *fakeRecord) apply(write bool, del bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.history) == 0 {
		f.history = append(f.history, 0)
	}
	f.applied++
	switch {
	case del:
		f.rev = 0
	case write:
		f.rev = f.applied
	}
	f.history = append(f.history, f.rev)
}

func (f *fakeRecord) index() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// heldSince reports whether the record had revision rev (0: absent) at
// some applied index from i on.
func (f *fakeRecord) heldSince(i, rev uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.history[i:] {
		if r == rev {
			return true
		}
	}
	return false
}

func (f *fakeRecord) revision() (uint64, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev, nil
}

// load derives "the value" of the record: its revision, as a string.
func (f *fakeRecord) load(uint64) (string, uint64, error) {
	f.loads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rev == 0 {
		return "", 0, nil
	}
	return strconv.FormatUint(f.rev, 10), f.rev, nil
}

func (f *fakeRecord) get(t *testing.T, c *Cache[string]) string {
	t.Helper()
	v, err := c.Get("k", f.index(), f.revision, f.load)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCacheSkipsReadsWhileNothingIsApplied(t *testing.T) {
	f := &fakeRecord{}
	f.apply(true, false) // rev 1, applied 1
	var c Cache[string]
	if v := f.get(t, &c); v != "1" || f.loads.Load() != 1 {
		t.Fatalf("first get = %q after %d loads", v, f.loads.Load())
	}
	reads := f.reads.Load()
	for range 10 {
		if v := f.get(t, &c); v != "1" {
			t.Fatalf("get = %q", v)
		}
	}
	if f.reads.Load() != reads || f.loads.Load() != 1 {
		t.Fatalf("with nothing applied, Get read %d revisions and loaded %d times", f.reads.Load()-reads, f.loads.Load()-1)
	}
	f.apply(false, false) // another record changed: one revision read, no load
	if v := f.get(t, &c); v != "1" || f.reads.Load() != reads+1 || f.loads.Load() != 1 {
		t.Fatalf("after an unrelated apply: %q, %d reads, %d loads", v, f.reads.Load()-reads, f.loads.Load())
	}
	f.apply(true, false) // the record changed: loaded again
	if v := f.get(t, &c); v != "3" || f.loads.Load() != 2 {
		t.Fatalf("after the record changed: %q, %d loads", v, f.loads.Load())
	}
	// Applied index unknown: every Get reads the revision.
	reads = f.reads.Load()
	if _, err := c.Get("k", 0, f.revision, f.load); err != nil || f.reads.Load() != reads+1 {
		t.Fatalf("with applied 0 the revision was not read (%v)", err)
	}
}

func TestCacheAbsentRecords(t *testing.T) {
	f := &fakeRecord{}
	f.apply(true, false)
	var c Cache[string]
	f.get(t, &c)
	f.apply(false, true) // deleted
	if v := f.get(t, &c); v != "" || c.Len() != 0 {
		t.Fatalf("a deleted record: %q, %d cached", v, c.Len())
	}
	loads := f.loads.Load()
	f.get(t, &c)
	if f.loads.Load() != loads || c.Len() != 0 {
		t.Fatal("an absent record was loaded or cached")
	}

	k := Cache[string]{KeepAbsent: true}
	absent := func(uint64) (string, uint64, error) { f.loads.Add(1); return "default", 0, nil }
	for range 3 {
		v, err := k.Get("k", f.index(), f.revision, absent)
		if err != nil || v != "default" {
			t.Fatalf("KeepAbsent get = %q, %v", v, err)
		}
	}
	if f.loads.Load() != loads+1 || k.Len() != 1 {
		t.Fatalf("KeepAbsent loaded %d times, %d cached", f.loads.Load()-loads, k.Len())
	}
}

func TestCachePurgeDuringLoadKeepsNothing(t *testing.T) {
	f := &fakeRecord{}
	f.apply(true, false)
	var zeroed []string
	var c Cache[string]
	c.Zero = func(v string) { zeroed = append(zeroed, v) }
	f.get(t, &c)
	c.Purge()
	if c.Len() != 0 || len(zeroed) != 1 {
		t.Fatalf("after Purge: %d cached, %d zeroed", c.Len(), len(zeroed))
	}
	_, err := c.Get("k", f.index(), f.revision, func(rev uint64) (string, uint64, error) {
		c.Purge() // the node seals while the record is read
		return f.load(rev)
	})
	if !errors.Is(err, ErrSealed) || c.Len() != 0 || len(zeroed) != 2 {
		t.Fatalf("load across a Purge: %v, %d cached, %d zeroed", err, c.Len(), len(zeroed))
	}
}

func TestCacheBoundKeepsEntriesInUse(t *testing.T) {
	c := Cache[string]{Max: 8}
	rev := func() (uint64, error) { return 1, nil }
	load := func(k string) func(uint64) (string, uint64, error) {
		return func(uint64) (string, uint64, error) { return k, 1, nil }
	}
	get := func(k string) {
		if v, err := c.Get(k, 5, rev, load(k)); err != nil || v != k {
			t.Fatalf("get %s = %q, %v", k, v, err)
		}
	}
	get("hot")
	for i := range 100 {
		get("cold-" + strconv.Itoa(i))
		get("hot")
		if c.Len() > 8 {
			t.Fatalf("%d cached, bound 8", c.Len())
		}
		if _, ok := c.Peek("hot"); !ok {
			t.Fatalf("after %d cold entries the one in use was evicted", i+1)
		}
	}
}

func TestCacheSweep(t *testing.T) {
	var c Cache[string]
	revs := map[string]uint64{"a": 1, "b": 2}
	for k, r := range revs {
		c.Get(k, 9, func() (uint64, error) { return r, nil }, func(uint64) (string, uint64, error) { return k, r, nil })
	}
	revs["b"] = 7
	var dropped []string
	n := c.Sweep(func(k string) (uint64, error) { return revs[k], nil }, func(v string) { dropped = append(dropped, v) })
	if _, ok := c.Peek("a"); n != 1 || len(dropped) != 1 || dropped[0] != "b" || !ok {
		t.Fatalf("Sweep dropped %d: %v", n, dropped)
	}
}

// Readers racing with writers and Purges never get a value older than the
// record was at the applied index they read first (run with -race).
func TestCacheConcurrent(t *testing.T) {
	f := &fakeRecord{}
	f.apply(true, false)
	c := Cache[string]{Max: 4}
	var stop atomic.Bool
	writer := make(chan struct{})
	go func() {
		defer close(writer)
		for i := 0; !stop.Load(); i++ {
			f.apply(i%3 == 0, i%17 == 0)
			if i%101 == 0 {
				c.Purge()
			}
		}
	}()
	defer func() { stop.Store(true); <-writer }()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "k"
			if g%2 == 1 {
				key = "other-" + strconv.Itoa(g) // fill the bound too
			}
			for range 2000 {
				a := f.index()
				v, err := c.Get(key, a, f.revision, f.load)
				if errors.Is(err, ErrSealed) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				// The value must be the record as it was at a or later.
				got := uint64(0)
				if v != "" {
					got, _ = strconv.ParseUint(v, 10, 64)
				}
				if !f.heldSince(a, got) {
					errs <- errors.New("stale value " + strconv.Quote(v) + " at applied " + strconv.FormatUint(a, 10))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
