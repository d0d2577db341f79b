package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/bolt"
	"github.com/keyraft/keyraft/plugins/conformance"
)

func openBolt(t *testing.T, name string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The write-behind store keeps the storage contract (except durability,
// which the Raft log provides) over a real bbolt file.
func TestWriteBehindConformance(t *testing.T) {
	for _, max := range []int{1, 64 << 20} {
		t.Run(fmt.Sprint("max=", max), func(t *testing.T) {
			conformance.TestStorage(t, func(t *testing.T) plugins.Storage {
				w := WriteBehind(openBolt(t, "s.db"), max, nil)
				t.Cleanup(func() { w.Close() })
				return w
			})
		})
	}
}

// gatedStore holds every Write until the test lets it through, so that
// layers pile up in front of it.
type gatedStore struct {
	plugins.Storage
	gate   chan struct{}
	writes chan int // batch sizes that reached the store
	fail   error
}

func (g *gatedStore) Write(b []plugins.Mutation) error {
	<-g.gate
	if g.fail != nil {
		return g.fail
	}
	err := g.Storage.Write(b)
	g.writes <- len(b)
	return err
}

// Random batches against a write-behind store whose writes are held back
// read exactly like the same batches written straight to a store, at every
// step: pending points, prefix and range deletions over older layers and
// over the store, then after everything reached the store.
func TestWriteBehindReadsLikeTheStore(t *testing.T) {
	ref := openBolt(t, "ref.db")
	defer ref.Close()
	g := &gatedStore{Storage: openBolt(t, "wb.db"), gate: make(chan struct{}), writes: make(chan int, 1000)}
	w := WriteBehind(g, 64<<20, nil)
	r := rand.New(rand.NewPCG(7, 11))
	key := func() []byte {
		return []byte(fmt.Sprintf("%c/%d", 'a'+r.IntN(3), r.IntN(40)))
	}
	check := func(step int) {
		t.Helper()
		for i := 0; i < 5; i++ {
			k := key()
			want, _ := ref.Get(k)
			got, err := w.Get(k)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("step %d: Get(%s) = %q, %v; want %q", step, k, got, err, want)
			}
			if h, _ := w.GetHead(k, 2); !bytes.Equal(h, want[:min(2, len(want))]) {
				t.Fatalf("step %d: GetHead(%s) = %q, want %q", step, k, h, want)
			}
		}
		for _, p := range []string{"", "a/", "b/1", "c"} {
			from := []byte(nil)
			if r.IntN(2) == 0 {
				from = key()
			}
			if s1, s2 := scanAll(t, ref, p, from), scanAll(t, w, p, from); s1 != s2 {
				t.Fatalf("step %d: scan %q from %q:\n store %s\n write-behind %s", step, p, from, s1, s2)
			}
		}
	}
	for step := 0; step < 600; step++ {
		var batch []plugins.Mutation
		for n := 1 + r.IntN(5); n > 0; n-- {
			switch x := r.IntN(20); {
			case x < 12:
				batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: key(), Value: []byte(fmt.Sprint("v", step, "-", n))})
			case x < 16:
				batch = append(batch, plugins.Mutation{Kind: plugins.Delete, Key: key()})
			case x < 18:
				batch = append(batch, plugins.Mutation{Kind: plugins.DeletePrefix, Key: key()[:1+r.IntN(3)]})
			default:
				lo, hi := key(), key()
				batch = append(batch, plugins.Mutation{Kind: plugins.DeleteRange, Key: lo, Value: hi})
			}
		}
		if err := ref.Write(batch); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(batch); err != nil {
			t.Fatal(err)
		}
		check(step)
		if r.IntN(15) == 0 {
			// Let one store write through: a layer lands mid-sequence.
			g.gate <- struct{}{}
			<-g.writes
			check(step)
		}
	}
	close(g.gate) // every later write passes
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if s1, s2 := scanAll(t, ref, "", nil), scanAll(t, g.Storage, "", nil); s1 != s2 {
		t.Fatalf("after Flush the store differs:\n want %s\n got  %s", s1, s2)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func scanAll(t *testing.T, s plugins.Reader, prefix string, from []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.ScanFrom([]byte(prefix), from, func(k, v []byte) error {
		fmt.Fprintf(&b, "%s=%s ", k, v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// While the store is slow, batches gather into one store write instead
// of one each.
func TestWriteBehindGathers(t *testing.T) {
	g := &gatedStore{Storage: openBolt(t, "wb.db"), gate: make(chan struct{}), writes: make(chan int, 100)}
	w := WriteBehind(g, 1<<20, nil)
	defer func() { close(g.gate); w.Close() }()
	put := func(i int) error {
		return w.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte(fmt.Sprint("k", i)), Value: bytes.Repeat([]byte{'x'}, 100)}})
	}
	if err := put(0); err != nil { // the writer takes this one alone and waits at the gate
		t.Fatal(err)
	}
	testwait.For(t, "the condition", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.frozen) == 1 && w.active.empty() })
	for i := 1; i <= 20; i++ {
		if err := put(i); err != nil {
			t.Fatal(err)
		}
	}
	g.gate <- struct{}{}
	if n := <-g.writes; n != 1 {
		t.Fatalf("first store write had %d mutations, want 1", n)
	}
	g.gate <- struct{}{}
	if n := <-g.writes; n != 20 {
		t.Fatalf("the 20 writes made while the store was busy reached it as a batch of %d, want 20", n)
	}
}

// Pending layers stay bounded: a layer is cut at a quarter of the bound
// even while another is being written (one store write must stay small),
// and Write waits once the pending bytes reach the bound.
func TestWriteBehindBoundsMemory(t *testing.T) {
	g := &gatedStore{Storage: openBolt(t, "wb.db"), gate: make(chan struct{}), writes: make(chan int, 100)}
	const max = 4096
	w := WriteBehind(g, max, nil)
	defer func() { close(g.gate); w.Close() }()
	put := func(i int) error {
		return w.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte(fmt.Sprint("k", i)), Value: bytes.Repeat([]byte{'x'}, 100)}})
	}
	for i := 0; w.Pending() < max; i++ {
		if err := put(i); err != nil {
			t.Fatal(err)
		}
	}
	w.mu.Lock()
	for _, l := range w.layers() {
		if l.bytes > max/4+200 {
			t.Errorf("a pending layer holds %d bytes, past a quarter of the bound (%d) and one write", l.bytes, max/4)
		}
	}
	w.mu.Unlock()
	blocked := make(chan error, 1)
	go func() { blocked <- put(99) }()
	select {
	case err := <-blocked:
		t.Fatalf("a write past the memory bound returned (%v) while the store was held", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.gate <- struct{}{}
	if n := <-g.writes; n*(100+pointOverhead) > max/4+200 {
		t.Fatalf("a store write of %d mutations, past a quarter of the bound", n)
	}
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
}

// A store write that fails stops the writer for good: the failure reaches
// every later Write and Flush instead of being dropped.
func TestWriteBehindFailureIsSticky(t *testing.T) {
	boom := errors.New("disk on fire")
	g := &gatedStore{Storage: openBolt(t, "wb.db"), gate: make(chan struct{}), writes: make(chan int, 10), fail: boom}
	close(g.gate)
	w := WriteBehind(g, 1<<20, nil)
	if err := w.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte("a"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want the store's error", err)
	}
	if err := w.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte("b"), Value: []byte("1")}}); !errors.Is(err, boom) {
		t.Fatalf("Write after a failed store write = %v, want the store's error", err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close = %v, want the store's error", err)
	}
}

// Close writes what is pending: a store reopened after Close has it.
func TestWriteBehindCloseWritesPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w := WriteBehind(st, 1<<20, nil)
	for i := 0; i < 100; i++ {
		if err := w.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte(fmt.Sprintf("k%03d", i)), Value: []byte("v")}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := 0
	st.Scan(nil, func(k, v []byte) error { n++; return nil })
	if n != 100 {
		t.Fatalf("reopened store has %d keys, want 100", n)
	}
}

// A store write that fails outside Close is reported at once, from the
// writer, not first at the next Write (an idle node would go on answering
// from memory); a failure while closing is left to Close.
func TestWriteBehindReportsFailureAtOnce(t *testing.T) {
	boom := errors.New("disk on fire")
	g := &gatedStore{Storage: openBolt(t, "wb.db"), gate: make(chan struct{}), writes: make(chan int, 10), fail: boom}
	close(g.gate)
	failed := make(chan error, 1)
	w := WriteBehind(g, 1<<20, func(err error) { failed <- err })
	if err := w.Write([]plugins.Mutation{{Kind: plugins.Put, Key: []byte("a"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if !errors.Is(err, boom) {
			t.Fatalf("reported %v, want the store's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the failure was not reported")
	}
	w.Close()
}

// A crash with writes still pending leaves the store at an earlier
// applied index with exactly that index's state; replaying the Raft log
// from there gives the state of a node that never crashed, audit chain
// included.
func TestWriteBehindCrashReplaysFromTheLog(t *testing.T) {
	var logs []*raft.Log
	for i := uint64(1); i <= 60; i++ {
		c := &Command{Ops: []Op{put(fmt.Sprint("k", i%7), fmt.Sprint("v", i))}}
		if i%5 == 0 {
			c = &Command{Ops: []Op{{Kind: OpDeletePrefix, Key: "k"}}}
		}
		ev, _ := (&audit.Event{Operation: "transit/encrypt", Outcome: audit.Allowed, RequestID: fmt.Sprint(i)}).Encode()
		c.Events = [][]byte{ev}
		logs = append(logs, entry(t, i, c))
	}
	// The node that does not crash.
	want, _ := newFSM(t)
	want.ApplyBatch(logs)

	path := filepath.Join(t.TempDir(), "crash.db")
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedStore{Storage: st, gate: make(chan struct{}), writes: make(chan int, 100)}
	w := WriteBehind(g, 64<<20, nil)
	f, err := New(w)
	if err != nil {
		t.Fatal(err)
	}
	f.ApplyBatch(logs[:20])
	g.gate <- struct{}{} // the first batch's layer reaches the store
	<-g.writes
	f.ApplyBatch(logs[20:45])
	f.ApplyBatch(logs[45:]) // these stay in memory: the crash comes now
	st.Close()              // what the store holds is all that survives

	st, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f, err = New(WriteBehind(st, 64<<20, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.AppliedIndex(); got != 20 {
		t.Fatalf("store's applied index after the crash = %d, want 20 (the only batch it got)", got)
	}
	if h := f.AuditHead(); h.Seq != 20 {
		t.Fatalf("audit head after the crash = %d, want 20", h.Seq)
	}
	// Raft replays from its snapshot (none: index 1); applied entries are
	// skipped, the rest applied again.
	f.ApplyBatch(logs)
	if f.AuditHead() != want.AuditHead() {
		t.Fatalf("audit head after replay %+v, want %+v", f.AuditHead(), want.AuditHead())
	}
	for i := 0; i < 7; i++ {
		k := fmt.Sprint("k", i)
		v1, r1, _ := want.Get(k)
		v2, r2, _ := f.Get(k)
		if string(v1) != string(v2) || r1 != r2 {
			t.Fatalf("%s after replay = %q@%d, want %q@%d", k, v2, r2, v1, r1)
		}
	}
}
