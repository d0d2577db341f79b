package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// memLog is a Source: a chained log in memory that can be compacted and
// replaced like the replicated one.
type memLog struct {
	mu     sync.Mutex
	lines  map[uint64][]byte
	base   uint64
	head   uint64
	hash   string
	tag    string
	settle int
	follow bool // a follower: cannot settle
}

func newMemLog() *memLog { return &memLog{lines: map[uint64][]byte{}, hash: GenesisHash} }

func (m *memLog) append(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		e := &Event{Seq: m.head + 1, Time: time.Now().UTC(), Node: "n1", Operation: "transit/encrypt" + m.tag, Outcome: Allowed, PrevHash: m.hash}
		h, err := ChainHash(m.hash, e)
		if err != nil {
			panic(err)
		}
		e.Hash = h
		b, _ := json.Marshal(e)
		m.head, m.hash = e.Seq, h
		m.lines[e.Seq] = b
	}
}

func (m *memLog) compact(to uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := m.base + 1; s <= to; s++ {
		delete(m.lines, s)
	}
	m.base = to
}

// replace swaps in another history of length n (a restore).
func (m *memLog) replace(n int) {
	m.mu.Lock()
	m.lines, m.base, m.head, m.hash, m.tag = map[uint64][]byte{}, 0, 0, GenesisHash, m.tag+"'"
	m.mu.Unlock()
	m.append(n)
}

func (m *memLog) AuditRecords(from uint64, fn func(uint64, []byte) error) error {
	m.mu.Lock()
	head, base := m.head, m.base
	m.mu.Unlock()
	for s := max(from, base+1); s <= head; s++ {
		m.mu.Lock()
		b := m.lines[s]
		m.mu.Unlock()
		if b == nil {
			return nil
		}
		if err := fn(s, b); err != nil {
			return err
		}
	}
	return nil
}
func (m *memLog) AuditHeadSeq() uint64 { m.mu.Lock(); defer m.mu.Unlock(); return m.head }
func (m *memLog) AuditBaseSeq() uint64 { m.mu.Lock(); defer m.mu.Unlock(); return m.base }
func (m *memLog) AuditSettle(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settle++
	if m.follow {
		return fmt.Errorf("not the leader")
	}
	return nil
}

// fileSeqs reads the positions of a JSON-lines file, failing on any line
// that is not a whole event.
func fileSeqs(t *testing.T, path string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s ends in a torn line", path)
	}
	var out []uint64
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		p, err := lineSeq([]byte(line))
		if err != nil {
			t.Fatalf("%s: a line that is not an event: %q", path, line)
		}
		out = append(out, p.Seq)
	}
	return out
}

func exactlyOnce(t *testing.T, seqs []uint64, from, to uint64) {
	t.Helper()
	if uint64(len(seqs)) != to-from+1 {
		t.Fatalf("%d events, want %d (%d..%d)", len(seqs), to-from+1, from, to)
	}
	for i, s := range seqs {
		if s != from+uint64(i) {
			t.Fatalf("line %d holds seq %d, want %d", i+1, s, from+uint64(i))
		}
	}
}

func run(t *testing.T, f *Follower) (stop func()) {
	t.Helper()
	if f.Poll == 0 {
		f.Poll = 5 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// A torn tail (a crash mid-write) is cut off and delivery resumes after
// the last whole line; compaction and more events never restart the sink.
func TestFileSinkResumesAfterItsLastWholeLine(t *testing.T) {
	log := newMemLog()
	log.append(100)
	path := filepath.Join(t.TempDir(), "audit.log")
	s, err := NewFileSink(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &Follower{Name: "f", Source: log, Sink: s, MaxBatch: 7}
	stop := run(t, f)
	testwait.For(t, "delivery", func() bool { return f.Status().Delivered.Seq == 100 })
	stop()
	s.Close()

	// A crash mid-write: half a line at the end.
	fh, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	fh.Write(log.lines[101-1][:40])
	fh.Close()
	log.append(50)
	log.compact(120) // forced past the sink: 101..120 never reach it
	s, err = NewFileSink(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Position(); p.Seq != 100 || p.Hash == "" {
		t.Fatalf("resumes after %+v, want seq 100", p)
	}
	f = &Follower{Name: "f", Source: log, Sink: s}
	stop = run(t, f)
	testwait.For(t, "delivery after the crash", func() bool { return f.Status().Delivered.Seq == 150 })
	stop()
	s.Close()
	seqs := fileSeqs(t, path)
	exactlyOnce(t, seqs[:100], 1, 100)
	exactlyOnce(t, seqs[100:], 121, 150)
	if st := f.Status(); st.Restarts != 0 {
		t.Fatalf("compaction restarted the sink: %+v", st)
	}
}

func TestFileSinkRefusesAForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(path, []byte("my notes\n"), 0o600)
	if _, err := NewFileSink(path, 0, 0); err == nil || !strings.Contains(err.Error(), "not an audit event") {
		t.Fatalf("opened a file that is not an audit log: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "my notes\n" {
		t.Fatalf("the file was changed: %q", b)
	}
}

// A replaced log (restore) starts a new file; the old history stays in
// path.1, never mixed with the new one.
func TestFileSinkStartsANewFileWhenTheLogIsReplaced(t *testing.T) {
	log := newMemLog()
	log.append(30)
	path := filepath.Join(t.TempDir(), "audit.log")
	s, _ := NewFileSink(path, 0, 3)
	f := &Follower{Name: "f", Source: log, Sink: s}
	stop := run(t, f)
	testwait.For(t, "delivery", func() bool { return f.Status().Delivered.Seq == 30 })
	log.replace(40) // longer, but another history
	testwait.For(t, "delivery of the new log", func() bool {
		st := f.Status()
		return st.Delivered.Seq == 40 && st.Delivered.Hash == log.hash
	})

	stop()
	s.Close()
	exactlyOnce(t, fileSeqs(t, path+".1"), 1, 30)
	exactlyOnce(t, fileSeqs(t, path), 1, 40)
	if f.Status().Restarts != 1 {
		t.Fatalf("restarts %d, want 1", f.Status().Restarts)
	}
}

func startReceiver(t *testing.T, path, addr string) (*Receiver, net.Listener) {
	t.Helper()
	r := &Receiver{Path: path}
	if err := r.Open(); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	var err error
	testwait.Poll(30*time.Second, func() bool { // the port of a stopped receiver may take a moment
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(ln)
	return r, ln
}

// The acknowledged framing: a collector that restarts, and two nodes that
// deliver at once (a leader change), still get every event exactly once,
// and the sink's cursor is what the collector stored.
func TestAckedSocketDeliversExactlyOnceAcrossCollectorRestarts(t *testing.T) {
	log := newMemLog()
	log.append(500)
	path := filepath.Join(t.TempDir(), "collected.log")
	r, ln := startReceiver(t, path, "127.0.0.1:0")
	addr := ln.Addr().String()
	newSink := func() Sink {
		return NewSocketSink(SocketSinkConfig{Network: "tcp", Address: addr, Acked: true, Device: "d", Timeout: 2 * time.Second})
	}
	f1 := &Follower{Name: "n1", Source: log, Sink: newSink(), MaxBatch: 50}
	f2 := &Follower{Name: "n2", Source: log, Sink: newSink(), MaxBatch: 33}
	stop1, stop2 := run(t, f1), run(t, f2)
	for round := 0; round < 3; round++ {
		log.append(300)
		testwait.For(t, "some delivery", func() bool { p, _ := r.Stored(); return p.Seq > log.AuditHeadSeq()-200 })
		ln.Close()
		r.Close()
		log.append(100)
		r, ln = startReceiver(t, path, addr)
	}
	head := log.AuditHeadSeq()
	testwait.For(t, "both followers to see the collector's acknowledgement", func() bool {
		return f1.Status().Delivered.Seq == head && f2.Status().Delivered.Seq == head
	})

	stop1()
	stop2()
	ln.Close()
	r.Close()
	exactlyOnce(t, fileSeqs(t, path), 1, head)
}

// A collector that accepts and never reads costs the sink its window, not
// the log: the follower keeps failing over with backoff, and once a real
// collector answers, it gets everything exactly once.
func TestStalledCollectorThenHealed(t *testing.T) {
	log := newMemLog()
	log.append(2000)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read
			mu.Unlock()
		}
	}()
	sink := NewSocketSink(SocketSinkConfig{Network: "tcp", Address: addr, Acked: true, Timeout: 500 * time.Millisecond})
	f := &Follower{Name: "s", Source: log, Sink: sink}
	stop := run(t, f)
	defer stop()
	testwait.For(t, "the sink to report the stall", func() bool {
		return strings.Contains(f.Status().LastError, "did not answer the hello")
	})

	if st := f.Status(); st.Delivered.Seq != 0 || st.LagEvents != 2000 {
		t.Fatalf("stalled: %+v", st)
	}
	ln.Close()
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	mu.Unlock()
	path := filepath.Join(t.TempDir(), "collected.log")
	r, ln2 := startReceiver(t, path, addr)
	defer ln2.Close()
	defer r.Close()
	log.append(10)
	testwait.For(t, "delivery after the heal", func() bool { return f.Status().Delivered.Seq == 2010 })
	exactlyOnce(t, fileSeqs(t, path), 1, 2010)
}

// A collector that does not speak the acknowledged framing gets a clear
// error (what to set), and a plain-lines sink never claims a position.
func TestPlainLineCollectorIsToldWhatToSet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		br.ReadString('\n')
		fmt.Fprintln(c, "HTTP/1.0 400 Bad Request")
	}()
	s := NewSocketSink(SocketSinkConfig{Network: "tcp", Address: ln.Addr().String(), Acked: true, Timeout: time.Second})
	_, err = s.(Positioner).Position()
	if err == nil || !strings.Contains(err.Error(), `not {"last_seq"`) {
		t.Fatalf("a collector that does not speak the framing: %v", err)
	}
	if _, ok := NewSocketSink(SocketSinkConfig{Network: "tcp", Address: "x"}).(Positioner); ok {
		t.Fatal("a plain-lines socket sink claims a position")
	}
}

// A node whose log is behind what its sink holds (another node delivered
// to the same file or collector) waits for its log to grow and never
// takes the missing events for a replaced log.
func TestANodeBehindItsSinkWaitsInsteadOfRestarting(t *testing.T) {
	ahead := newMemLog()
	ahead.append(80)
	path := filepath.Join(t.TempDir(), "audit.log")
	s, _ := NewFileSink(path, 0, 0)
	f := &Follower{Name: "f", Source: ahead, Sink: s}
	stop := run(t, f)
	testwait.For(t, "delivery", func() bool { return f.Status().Delivered.Seq == 80 })
	stop()
	s.Close()

	behind := &memLog{lines: map[uint64][]byte{}, follow: true}
	ahead.mu.Lock()
	for seq := uint64(1); seq <= 50; seq++ {
		behind.lines[seq] = ahead.lines[seq]
	}
	behind.head, behind.hash = 50, ""
	ahead.mu.Unlock()
	s, _ = NewFileSink(path, 0, 0)
	f = &Follower{Name: "f", Source: behind, Sink: s}
	stop = run(t, f)
	defer func() { stop(); s.Close() }()
	testwait.For(t, "the follower to say it waits", func() bool { return strings.Contains(f.Status().LastError, "catch up") })
	ahead.append(20)
	ahead.mu.Lock()
	for seq := uint64(51); seq <= 100; seq++ {
		behind.lines[seq] = ahead.lines[seq]
	}
	ahead.mu.Unlock()
	behind.mu.Lock()
	behind.head = 100
	behind.mu.Unlock()
	testwait.For(t, "delivery once the node caught up", func() bool { return f.Status().Delivered.Seq == 100 })
	if st := f.Status(); st.Restarts != 0 {
		t.Fatalf("a node behind its sink restarted it: %+v", st)
	}
	exactlyOnce(t, fileSeqs(t, path), 1, 100)
}

// An event of the largest size the log stores passes through the
// acknowledged framing (the collector's line buffer fits it).
func TestReceiverTakesTheLargestEvent(t *testing.T) {
	log := newMemLog()
	log.append(1)
	e := &Event{Seq: 2, Time: time.Now().UTC(), Node: "n1", Operation: "big", Outcome: Allowed, PrevHash: log.hash, HMACs: map[string]string{}}
	for i := 0; ; i++ {
		b, _ := e.Encode()
		if len(b) > MaxEventSize-80 {
			break
		}
		e.HMACs[fmt.Sprintf("f%05d", i)] = strings.Repeat("a", 64)
	}
	e.Hash, _ = ChainHash(log.hash, e)
	b, _ := json.Marshal(e)
	if len(b) <= MaxEventSize {
		t.Fatalf("the test event is only %d bytes", len(b))
	}
	log.mu.Lock()
	log.lines[2], log.head, log.hash = b, 2, e.Hash
	log.mu.Unlock()
	path := filepath.Join(t.TempDir(), "collected.log")
	r, ln := startReceiver(t, path, "127.0.0.1:0")
	defer ln.Close()
	defer r.Close()
	f := &Follower{Name: "big", Source: log, Sink: NewSocketSink(SocketSinkConfig{Network: "tcp", Address: ln.Addr().String(), Acked: true})}
	stop := run(t, f)
	defer stop()
	testwait.For(t, "the large event to be stored", func() bool { return f.Status().Delivered.Seq == 2 })
	exactlyOnce(t, fileSeqs(t, path), 1, 2)
}

// The framing's messages in docs/audit.md are the ones sink and
// collector exchange: each decodes, strictly, into its message type.
func TestFramingDocMessagesDecode(t *testing.T) {
	b, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, line := range strings.Split(string(b), "\n") {
		dir, msg, ok := strings.Cut(strings.TrimSpace(line), ":   ")
		if !ok || !strings.HasPrefix(msg, "{") {
			continue
		}
		var target any
		switch {
		case strings.HasPrefix(dir, "sink") && strings.Contains(msg, "keyraft_audit"):
			target = &helloMsg{}
		case strings.HasPrefix(dir, "collector") && strings.Contains(msg, "last_seq"):
			target = &helloAnswer{}
		case strings.HasPrefix(dir, "collector") && strings.Contains(msg, "ack"):
			target = &ackMsg{}
		default:
			t.Fatalf("a message the test does not know: %q", line)
		}
		d := json.NewDecoder(strings.NewReader(msg))
		d.DisallowUnknownFields()
		if err := d.Decode(target); err != nil {
			t.Errorf("%q: %v", msg, err)
		}
		seen++
	}
	if seen != 3 {
		t.Fatalf("found %d framing messages in docs/audit.md, want 3", seen)
	}
}
