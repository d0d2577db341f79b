package plugins

import (
	"bytes"
	"sync"
)

// Cached puts a read cache of at most maxBytes (keys and values) in front
// of a Storage whose only writer goes through the returned Storage: the
// state machine. A storage plugin answers a Get in a process round trip
// (~100 µs); the hot path reads a few records per request (a key's
// revision, a token), so they are served from memory instead. The cache
// holds what the store holds (barrier ciphertext), never more.
//
// Coherence: every write updates or drops the cached entries it touches
// after the store has it; a read that raced with a write does not fill
// the cache (a generation counter tells). Scans and views go to the store.
func Cached(s Storage, maxBytes int) Storage {
	return &cached{s: s, max: maxBytes, m: map[string][]byte{}}
}

type cached struct {
	s   Storage
	max int

	mu   sync.Mutex
	m    map[string][]byte // nil value: known to be absent
	size int
	gen  uint64 // bumped before and after every write
}

var (
	_ HeadReader = (*cached)(nil)
	_ Compactor  = (*cached)(nil)
)

func (c *cached) lookup(key []byte) (v []byte, hit bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, hit = c.m[string(key)]
	return v, hit, c.gen
}

// fill caches a value read at generation gen, unless a write began since.
func (c *cached) fill(key, v []byte, gen uint64) {
	n := len(key) + len(v) + 48
	if n > c.max/16 {
		return // one big value must not evict everything
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.m[string(key)]; ok {
		return
	}
	c.put(string(key), v)
}

// put caches a copy of v (Clone keeps nil nil and empty non-nil).
func (c *cached) put(k string, v []byte) {
	c.drop(k)
	for c.size+len(k)+len(v)+48 > c.max && len(c.m) > 0 {
		for victim := range c.m { // an arbitrary victim: map order
			c.drop(victim)
			break
		}
	}
	c.m[k] = bytes.Clone(v)
	c.size += len(k) + len(v) + 48
}

func (c *cached) Get(key []byte) ([]byte, error) {
	v, hit, gen := c.lookup(key)
	if hit {
		return bytes.Clone(v), nil
	}
	v, err := c.s.Get(key)
	if err == nil {
		c.fill(key, v, gen)
	}
	return v, err
}

func (c *cached) GetHead(key []byte, n int) ([]byte, error) {
	if v, hit, _ := c.lookup(key); hit {
		if len(v) > n {
			v = v[:n]
		}
		return bytes.Clone(v), nil
	}
	// A miss reads the whole value, which fills the cache: the state
	// machine reads record heads (revisions) on every request, and
	// records are small (a value too big to cache is read whole each
	// time, which only costs when heads of big records are read often).
	v, err := c.Get(key)
	if len(v) > n {
		v = v[:n]
	}
	return v, err
}

func (c *cached) Scan(prefix []byte, fn func(k, v []byte) error) error { return c.s.Scan(prefix, fn) }

func (c *cached) ScanFrom(prefix, from []byte, fn func(k, v []byte) error) error {
	return c.s.ScanFrom(prefix, from, fn)
}

func (c *cached) View() (View, error) { return c.s.View() }

func (c *cached) Write(batch []Mutation) error {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
	err := c.s.Write(batch)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, m := range batch {
		switch m.Kind {
		case Put:
			// A record that is read (it is in the cache) gets its new
			// value: the state machine reads its audit head on every
			// batch. Others stay out: most writes are audit events that
			// are never read back by key and would evict the hot records.
			k := string(m.Key)
			if _, hot := c.m[k]; hot && err == nil && len(k)+len(m.Value)+48 <= c.max/16 {
				v := m.Value
				if v == nil {
					v = []byte{} // a Put of nil stores an empty value, not absence
				}
				c.put(k, v)
			} else {
				c.drop(k)
			}
		case Delete:
			c.drop(string(m.Key))
		case DeletePrefix:
			for k := range c.m {
				if len(k) >= len(m.Key) && k[:len(m.Key)] == string(m.Key) {
					c.drop(k)
				}
			}
		case DeleteRange:
			for k := range c.m {
				if k >= string(m.Key) && k < string(m.Value) {
					c.drop(k)
				}
			}
		default:
			// Unknown to the cache: forget everything rather than guess.
			clear(c.m)
			c.size = 0
		}
	}
	return err
}

// drop forgets one entry.
func (c *cached) drop(k string) {
	if v, ok := c.m[k]; ok {
		c.size -= len(k) + len(v) + 48
		delete(c.m, k)
	}
}

func (c *cached) Compact() error {
	if cp, ok := c.s.(Compactor); ok {
		return cp.Compact()
	}
	return ErrUnsupported
}

// Abort forwards plugins.Aborter.
func (c *cached) Abort() {
	if a, ok := c.s.(Aborter); ok {
		a.Abort()
	}
}

func (c *cached) Close() error {
	c.mu.Lock()
	clear(c.m)
	c.size = 0
	c.mu.Unlock()
	return c.s.Close()
}
