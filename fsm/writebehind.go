package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyraft/keyraft/plugins"
)

// WriteBehind puts an in-memory write layer in front of the state
// machine's store, so that applying a Raft entry does not wait for the
// store (a process round trip to a storage plugin and an fsync): Write
// returns once the batch is in memory, and one background writer hands
// the layers to s in order, each as one atomic batch. A layer gathers
// writes for up to writeBehindDelay (or until it holds a quarter of
// maxBytes) before it is written, so the store sees ten large batches a
// second instead of one per Raft entry; nothing waits for that delay but
// the store.
//
// The Raft log is the durable source: every batch the state machine
// writes carries the applied index, so after a crash the store holds some
// prefix of the applied entries, consistent with the index it records,
// and Raft replays the rest from its log. Reads (Get, Scan, views) see
// every write that returned. View and Compact write everything pending
// first, so a Raft snapshot or a purge sees the applied state in the
// store; Flush does that on demand.
//
// maxBytes bounds the memory held by pending layers: a Write waits while
// they hold more (backpressure on the apply loop, never an error). A
// failed store write is permanent (the state machine cannot skip a
// committed entry): Write, Flush, View and Compact return it from then
// on, and the node must restart, which replays from the Raft log.
//
// onFailure, when not nil, is called from the writer with the error of a
// store write that failed outside Close: a node must not go on answering
// from a state it cannot store (the state machine's apply used to panic
// at once; now the writer is where the failure is seen).
func WriteBehind(s plugins.Storage, maxBytes int, onFailure func(error)) *WriteBehindStore {
	w := &WriteBehindStore{s: s, max: maxBytes, active: newLayer(), done: make(chan struct{}),
		delay: writeBehindDelay, kick: make(chan struct{}, 1), onFailure: onFailure}
	w.cond = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// WriteBehindStore is the store WriteBehind returns. It implements
// plugins.Storage, HeadReader, Compactor and Aborter.
type WriteBehindStore struct {
	s   plugins.Storage
	max int

	mu      sync.Mutex
	cond    *sync.Cond // broadcast on every change below
	active  *layer     // takes writes
	frozen  []*layer   // oldest first; frozen[0] is being written
	size    int        // bytes held by active and frozen
	seq     uint64     // number of layers frozen so far
	written uint64     // number of layers in the store
	err     error      // sticky: a store write failed
	closing bool
	closed  bool
	done    chan struct{} // closed when the writer exits

	delay time.Duration // how long a layer gathers writes
	kick  chan struct{} // cuts the gathering short (Flush, Close, size)

	onFailure func(error)
}

// writeBehindDelay is how long the active layer gathers writes before it
// is written. Nothing waits for it but the store, and a crash replays at
// most this much of the Raft log; each store write costs a process round
// trip and two fsyncs, which on a disk shared with the Raft log (three
// nodes on one disk measured 25% more encrypts at 100 ms than at 10 ms)
// compete with the log's own fsyncs that every answer waits for.
const writeBehindDelay = 100 * time.Millisecond

func (w *WriteBehindStore) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

var (
	_ plugins.Storage    = (*WriteBehindStore)(nil)
	_ plugins.HeadReader = (*WriteBehindStore)(nil)
	_ plugins.Compactor  = (*WriteBehindStore)(nil)
	_ plugins.Aborter    = (*WriteBehindStore)(nil)
)

// layer is the net effect of a run of batches: deletions of ranges of the
// store beneath (tombs, in order) and then, above them, point values.
// A point written before a later tomb of the same layer is dropped when
// the tomb is added, so within a layer every point is newer than every
// tomb.
type layer struct {
	points map[string]point
	tombs  []tomb
	bytes  int
	seq    uint64    // set when frozen
	since  time.Time // first write
}

type point struct {
	v   []byte
	del bool
}

type tomb struct {
	kind   plugins.MutationKind // DeletePrefix or DeleteRange
	lo, hi []byte               // prefix in lo, or the range [lo, hi)
}

func (t tomb) covers(k []byte) bool {
	if t.kind == plugins.DeletePrefix {
		return bytes.HasPrefix(k, t.lo)
	}
	return bytes.Compare(k, t.lo) >= 0 && bytes.Compare(k, t.hi) < 0
}

func newLayer() *layer { return &layer{points: map[string]point{}} }

func (l *layer) empty() bool { return len(l.points) == 0 && len(l.tombs) == 0 }

// pointOverhead is a rough per-entry cost of the map, for the memory bound.
const pointOverhead = 64

func (l *layer) apply(m plugins.Mutation) {
	switch m.Kind {
	case plugins.Put, plugins.Delete:
		k := string(m.Key)
		if old, ok := l.points[k]; ok {
			l.bytes -= len(k) + len(old.v) + pointOverhead
		}
		p := point{del: m.Kind == plugins.Delete}
		if !p.del {
			p.v = bytes.Clone(m.Value)
			if p.v == nil {
				p.v = []byte{}
			}
		}
		l.points[k] = p
		l.bytes += len(k) + len(p.v) + pointOverhead
	case plugins.DeletePrefix, plugins.DeleteRange:
		t := tomb{kind: m.Kind, lo: bytes.Clone(m.Key), hi: bytes.Clone(m.Value)}
		if t.kind == plugins.DeleteRange && bytes.Compare(t.lo, t.hi) >= 0 {
			return // empty range
		}
		for k, p := range l.points {
			if t.covers([]byte(k)) {
				l.bytes -= len(k) + len(p.v) + pointOverhead
				delete(l.points, k)
			}
		}
		l.tombs = append(l.tombs, t)
		l.bytes += len(t.lo) + len(t.hi) + pointOverhead
	}
}

// lookup reports what the layer says of k: a value, a deletion, or
// nothing (look further down).
func (l *layer) lookup(k []byte) (v []byte, found bool) {
	if p, ok := l.points[string(k)]; ok {
		if p.del {
			return nil, true
		}
		return p.v, true
	}
	for _, t := range l.tombs {
		if t.covers(k) {
			return nil, true
		}
	}
	return nil, false
}

// mutations is the layer as one store batch: its tombs, then its points.
func (l *layer) mutations() []plugins.Mutation {
	out := make([]plugins.Mutation, 0, len(l.tombs)+len(l.points))
	for _, t := range l.tombs {
		out = append(out, plugins.Mutation{Kind: t.kind, Key: t.lo, Value: t.hi})
	}
	for k, p := range l.points {
		if p.del {
			out = append(out, plugins.Mutation{Kind: plugins.Delete, Key: []byte(k)})
		} else {
			out = append(out, plugins.Mutation{Kind: plugins.Put, Key: []byte(k), Value: p.v})
		}
	}
	return out
}

// validate refuses what the store would refuse, before anything is kept:
// a batch is applied whole or not at all.
func validate(batch []plugins.Mutation) error {
	for _, m := range batch {
		switch m.Kind {
		case plugins.Put:
			if len(m.Key) == 0 {
				return errors.New("storage: empty key")
			}
		case plugins.Delete, plugins.DeletePrefix, plugins.DeleteRange:
		default:
			return fmt.Errorf("storage: unknown mutation kind %d", m.Kind)
		}
	}
	return nil
}

// Write implements plugins.Storage: the batch is in memory, visible to
// every read, when it returns; the store gets it soon after.
func (w *WriteBehindStore) Write(batch []plugins.Mutation) error {
	if err := validate(batch); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.size >= w.max && w.err == nil && !w.closing {
		w.cond.Wait()
	}
	if w.closing {
		return plugins.ErrStorageClosed
	}
	if w.err != nil {
		return w.err
	}
	if w.active.empty() {
		w.active.since = time.Now()
	}
	before := w.active.bytes
	for _, m := range batch {
		w.active.apply(m)
	}
	w.size += w.active.bytes - before
	if w.active.bytes >= w.max/4 {
		// Freeze it now even while another layer is being written: a
		// layer is one store write, which must stay small enough to
		// finish within a call's timeout. Any boundary is consistent:
		// every batch carries the applied index.
		w.freeze()
		w.wake()
	}
	w.cond.Broadcast()
	return nil
}

// freeze makes the active layer the newest frozen one (w.mu held).
func (w *WriteBehindStore) freeze() {
	if w.active.empty() {
		return
	}
	w.seq++
	w.active.seq = w.seq
	w.frozen = append(w.frozen, w.active)
	w.active = newLayer()
}

func (w *WriteBehindStore) run() {
	defer close(w.done)
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if len(w.frozen) == 0 && !w.active.empty() && !w.closing {
			// Gather: let more writes join this layer, unless told
			// to hurry.
			if wait := w.delay - time.Since(w.active.since); wait > 0 && w.active.bytes < w.max/4 {
				w.mu.Unlock()
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-w.kick:
				}
				t.Stop()
				w.mu.Lock()
				continue
			}
		}
		if len(w.frozen) == 0 {
			w.freeze()
		}
		if len(w.frozen) == 0 {
			if w.closing {
				return
			}
			w.cond.Wait()
			continue
		}
		l := w.frozen[0]
		w.mu.Unlock()
		err := w.s.Write(l.mutations())
		w.mu.Lock()
		if err != nil {
			w.err = fmt.Errorf("fsm: writing applied entries to the state store: %w", err)
			w.cond.Broadcast()
			if fail := w.onFailure; fail != nil && !w.closing {
				w.mu.Unlock()
				fail(w.err)
				w.mu.Lock()
			}
			return
		}
		w.frozen[0] = nil
		w.frozen = w.frozen[1:]
		w.size -= l.bytes
		w.written = l.seq
		w.cond.Broadcast()
	}
}

// Flush writes everything written so far to the store and returns once
// the store has it.
func (w *WriteBehindStore) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return plugins.ErrStorageClosed
	}
	w.freeze()
	w.wake()
	w.cond.Broadcast()
	want := w.seq
	for w.written < want && w.err == nil {
		w.cond.Wait()
	}
	return w.err
}

// Pending reports how many bytes wait for the store (for metrics).
func (w *WriteBehindStore) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// layers returns the pending layers, newest first (w.mu held).
func (w *WriteBehindStore) layers() []*layer {
	out := make([]*layer, 0, 1+len(w.frozen))
	out = append(out, w.active)
	for i := len(w.frozen) - 1; i >= 0; i-- {
		out = append(out, w.frozen[i])
	}
	return out
}

func (w *WriteBehindStore) pending(key []byte) (v []byte, found bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, false, plugins.ErrStorageClosed
	}
	for _, l := range w.layers() {
		if v, found := l.lookup(key); found {
			return bytes.Clone(v), true, nil
		}
	}
	return nil, false, nil
}

// Get implements plugins.Storage.
func (w *WriteBehindStore) Get(key []byte) ([]byte, error) {
	v, found, err := w.pending(key)
	if found || err != nil {
		return v, err
	}
	return w.s.Get(key)
}

// GetHead implements plugins.HeadReader.
func (w *WriteBehindStore) GetHead(key []byte, n int) ([]byte, error) {
	v, found, err := w.pending(key)
	if found || err != nil {
		if len(v) > n {
			v = v[:n]
		}
		return v, err
	}
	if hr, ok := w.s.(plugins.HeadReader); ok {
		return hr.GetHead(key, n)
	}
	v, err = w.s.Get(key)
	if len(v) > n {
		v = v[:n]
	}
	return v, err
}

// Scan implements plugins.Storage.
func (w *WriteBehindStore) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return w.ScanFrom(prefix, nil, fn)
}

type pendingKV struct {
	k   string
	v   []byte
	del bool
}

// ScanFrom implements plugins.Storage: the pending entries in the range,
// resolved once when the scan starts, merged into the store's scan. It is
// not a snapshot: a layer that lands in the store meanwhile may show
// some writes newer than the scan's start (as a scan through a storage
// plugin that resumes after a crash may). Every reader that acts on a
// scan either re-reads under a revision condition (rotation, deletion)
// or reads append-only records (audit events); a scan is never held
// against the writer, since a sink's callback can block on a stalled
// collector.
func (w *WriteBehindStore) ScanFrom(prefix, from []byte, fn func(k, v []byte) error) error {
	start := prefix
	if bytes.Compare(from, prefix) > 0 {
		start = from
	}
	in := func(k []byte) bool { return bytes.HasPrefix(k, prefix) && bytes.Compare(k, start) >= 0 }

	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return plugins.ErrStorageClosed
	}
	resolved := map[string]point{}
	var tombs []tomb
	ls := w.layers()
	for i := len(ls) - 1; i >= 0; i-- { // oldest first
		l := ls[i]
		for _, t := range l.tombs {
			for k := range resolved {
				if t.covers([]byte(k)) {
					delete(resolved, k)
				}
			}
			tombs = append(tombs, t)
		}
		for k, p := range l.points {
			if in([]byte(k)) {
				resolved[k] = p
			}
		}
	}
	w.mu.Unlock()

	mem := make([]pendingKV, 0, len(resolved))
	for k, p := range resolved {
		mem = append(mem, pendingKV{k: k, v: p.v, del: p.del})
	}
	slices.SortFunc(mem, func(a, b pendingKV) int { return bytes.Compare([]byte(a.k), []byte(b.k)) })
	i := 0
	emitBefore := func(k []byte) error {
		for i < len(mem) && (k == nil || mem[i].k < string(k)) {
			if !mem[i].del {
				if err := fn([]byte(mem[i].k), mem[i].v); err != nil {
					return err
				}
			}
			i++
		}
		return nil
	}
	err := w.s.ScanFrom(prefix, from, func(k, v []byte) error {
		if err := emitBefore(k); err != nil {
			return err
		}
		if i < len(mem) && mem[i].k == string(k) {
			return nil // the pending entry wins; emitted by the next emitBefore
		}
		for _, t := range tombs {
			if t.covers(k) {
				return nil
			}
		}
		return fn(k, v)
	})
	if err != nil {
		return err
	}
	return emitBefore(nil)
}

// View implements plugins.Storage: a view of the store after everything
// written so far is in it.
func (w *WriteBehindStore) View() (plugins.View, error) {
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return w.s.View()
}

// Compact implements plugins.Compactor, after writing everything pending
// (a destroyed key's records must leave memory for the store, then the
// store's free pages).
func (w *WriteBehindStore) Compact() error {
	c, ok := w.s.(plugins.Compactor)
	if !ok {
		return plugins.ErrUnsupported
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return c.Compact()
}

// Abort implements plugins.Aborter, for the store beneath.
func (w *WriteBehindStore) Abort() {
	if a, ok := w.s.(plugins.Aborter); ok {
		a.Abort()
	}
}

// Close writes everything pending to the store, then closes it.
func (w *WriteBehindStore) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closing = true
	w.freeze()
	w.wake()
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.done
	w.mu.Lock()
	w.closed = true
	err := w.err
	w.active, w.frozen, w.size = newLayer(), nil, 0
	w.cond.Broadcast()
	w.mu.Unlock()
	return errors.Join(err, w.s.Close())
}
