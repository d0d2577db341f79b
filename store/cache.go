package store

import (
	"sync"
	"sync/atomic"
)

// Cache holds values derived from records of the replicated state (a
// parsed policy, an unwrapped key), each tagged with the revision of the
// record it was derived from. A value is used only while its record keeps
// that revision. Checking the revision is a local read; the cache skips
// even that while the node's Raft applied index is the one at which the
// value was last found current: nothing was applied since, so nothing
// changed.
//
// The zero Cache is ready to use; set its fields before the first Get.
// It is safe for concurrent use.
type Cache[V any] struct {
	// Max bounds the number of entries; 0 means no bound. A full cache
	// drops the first entry not used since the last sweep passed it
	// (second chance), so entries in use stay.
	Max int
	// KeepAbsent caches, for a record that does not exist (revision 0),
	// what load returns; otherwise an absent record is never cached and
	// Get returns the zero V for it.
	KeepAbsent bool
	// Zero, when set, wipes a value Purge drops, and a value loaded while
	// Purge ran (which Get then does not return). A value replaced or
	// evicted is not wiped: a request in flight may still hold it.
	Zero func(V)

	mu sync.RWMutex
	m  map[string]*cacheEntry[V]
	// epoch counts Purges: a value loaded across one is not kept.
	epoch uint64
}

type cacheEntry[V any] struct {
	rev uint64
	v   V
	// validAt is a Raft applied index at which the record was known to
	// have revision rev (0: none).
	validAt atomic.Uint64
	// used is set by every Get and cleared by the eviction's sweep.
	used atomic.Bool
}

// Get returns the value cached under key, or derives it again.
//
// applied is the store's Raft applied index (AppliedIndex), read before
// Get is called: when the cached value was current at that same index it
// is returned without a read; 0 means unknown, so the revision is always
// read. revision returns the record's revision now. load derives the value
// from the record, which it reads itself and may find newer than rev: it
// returns the revision it used (0 if the record is gone).
//
// Get returns load's error, and ErrSealed when Purge ran during load.
func (c *Cache[V]) Get(key string, applied uint64, revision func() (uint64, error), load func(rev uint64) (V, uint64, error)) (V, error) {
	var zero V
	c.mu.RLock()
	e := c.m[key]
	epoch := c.epoch
	c.mu.RUnlock()
	if e != nil && applied != 0 && e.validAt.Load() == applied {
		e.used.Store(true)
		return e.v, nil
	}
	rev, err := revision()
	if err != nil {
		return zero, err
	}
	if rev == 0 && !c.KeepAbsent {
		c.Forget(key)
		return zero, nil
	}
	if e != nil && e.rev == rev {
		// The revision was read after applied, so it held at applied
		// unless it is newer than applied.
		if rev <= applied {
			e.validAt.Store(applied)
		}
		e.used.Store(true)
		return e.v, nil
	}
	v, rev, err := load(rev)
	if err != nil {
		return zero, err
	}
	if rev == 0 && !c.KeepAbsent {
		c.Forget(key)
		return v, nil
	}
	n := &cacheEntry[V]{rev: rev, v: v}
	// load read the record after applied: if it still had rev then, the
	// value is valid at applied; if it changed after, rev is above
	// applied, applied moves past it, and validAt never matches.
	if rev <= applied {
		n.validAt.Store(applied)
	}
	n.used.Store(true)
	c.mu.Lock()
	if c.epoch != epoch {
		c.mu.Unlock()
		if c.Zero != nil {
			c.Zero(v)
		}
		return zero, ErrSealed
	}
	old := c.m[key]
	// Keep a cached value of a newer revision than the one loaded (a
	// concurrent Get loaded after this one); an absent record's revision
	// says nothing of its age, so that entry always replaces.
	if old == nil || rev == 0 || old.rev <= rev {
		if c.m == nil {
			c.m = map[string]*cacheEntry[V]{}
		}
		if old == nil && c.Max > 0 && len(c.m) >= c.Max {
			c.evictOne()
		}
		c.m[key] = n
	}
	c.mu.Unlock()
	return v, nil
}

// evictOne drops one entry to make room (c.mu held): the first not used
// since the sweep last passed it. Map order makes the sweep start anywhere.
func (c *Cache[V]) evictOne() {
	for pass := 0; pass < 2; pass++ {
		for k, e := range c.m {
			if pass == 0 && e.used.Swap(false) {
				continue
			}
			delete(c.m, k)
			return
		}
	}
}

// Forget drops the entry of key (a record known to be gone). The value is
// not wiped: a request in flight may still hold it.
func (c *Cache[V]) Forget(key string) {
	c.mu.RLock()
	_, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		c.mu.Lock()
		delete(c.m, key)
		c.mu.Unlock()
	}
}

// Peek returns the value cached under key without checking it.
func (c *Cache[V]) Peek(key string) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Len returns the number of entries.
func (c *Cache[V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Sweep drops every entry whose record's revision (read with revision)
// changed, and hands each dropped value to dropped (which may wipe it
// once requests holding it are done). An entry whose revision cannot be
// read stays. It returns how many were dropped.
func (c *Cache[V]) Sweep(revision func(key string) (uint64, error), dropped func(V)) int {
	c.mu.RLock()
	snap := make(map[string]*cacheEntry[V], len(c.m))
	for k, e := range c.m {
		snap[k] = e
	}
	c.mu.RUnlock()
	n := 0
	for k, e := range snap {
		rev, err := revision(k)
		if err != nil || rev == e.rev {
			continue
		}
		c.mu.Lock()
		drop := c.m[k] == e // not replaced by a newer load meanwhile
		if drop {
			delete(c.m, k)
		}
		c.mu.Unlock()
		if drop {
			n++
			if dropped != nil {
				dropped(e.v)
			}
		}
	}
	return n
}

// Purge drops every entry, wiping each value with Zero, and makes a Get
// whose load is in flight keep nothing. Call it when the node seals.
func (c *Cache[V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for k, e := range c.m {
		if c.Zero != nil {
			c.Zero(e.v)
		}
		delete(c.m, k)
	}
}
