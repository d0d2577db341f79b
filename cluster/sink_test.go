package cluster

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/internal/testwait"
)

// gateSink blocks every Write until the gate opens, then appends to a
// file sink: a sink that hangs, then recovers.
type gateSink struct {
	gate chan struct{}
	*audit.FileSink
}

func (g *gateSink) Write(b *audit.Batch) error {
	<-g.gate
	return g.FileSink.Write(b)
}

func TestHangingSinkNeverDelaysRequestsAndCatchesUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := startNode(t, t.TempDir())
	dir := t.TempDir()
	fs, err := audit.NewFileSink(filepath.Join(dir, "audit.log"), 256<<10, 50)
	if err != nil {
		t.Fatal(err)
	}
	sink := &gateSink{gate: make(chan struct{}), FileSink: fs}
	fol := &audit.Follower{Name: "file", Source: n, Sink: sink, Cursor: audit.FileCursor(filepath.Join(dir, "cursor")), Poll: 5 * time.Millisecond}
	done := make(chan struct{})
	go func() { fol.Run(ctx); close(done) }()

	// 10k events are recorded while the sink hangs: Record must not wait on it.
	const total = 10000
	var wg sync.WaitGroup
	for c := 0; c < 50; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < total/50; i++ {
				if err := n.AuditLog().Record(ctx, &audit.Event{Operation: "transit/encrypt", Outcome: audit.Allowed}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if fol.Status().Delivered.Seq != 0 {
		t.Fatalf("a hanging sink advanced to %d", fol.Status().Delivered.Seq)
	}
	close(sink.gate)
	testwait.For(t, "the sink to catch up", func() bool { return fol.Status().Delivered.Seq == n.AuditHeadSeq() })
	cancel()
	<-done
	fs.Close()

	// Every event, in order, exactly once, across the rotated files.
	files, _ := filepath.Glob(filepath.Join(dir, "audit.log*"))
	if len(files) < 2 {
		t.Fatalf("expected rotation, files: %v", files)
	}
	var seqs []uint64
	for i := len(files) - 1; i >= 1; i-- { // oldest (highest suffix) first
		seqs = append(seqs, seqsIn(t, filepath.Join(dir, "audit.log."+strconv.Itoa(i)))...)
	}
	seqs = append(seqs, seqsIn(t, filepath.Join(dir, "audit.log"))...)
	if uint64(len(seqs)) != n.AuditHeadSeq() {
		t.Fatalf("sink holds %d events, log has %d", len(seqs), n.AuditHeadSeq())
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, s)
		}
	}

	// Crash between a write and the cursor update: the restarted follower
	// must not duplicate (the file sink knows its last seq).
	os.WriteFile(filepath.Join(dir, "cursor"), []byte("5\n"), 0o600)
	n.AuditLog().Record(context.Background(), &audit.Event{Operation: "after-restart", Outcome: audit.Allowed})
	fs2, err := audit.NewFileSink(filepath.Join(dir, "audit.log"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	fol2 := &audit.Follower{Name: "file", Source: n, Sink: fs2, Cursor: audit.FileCursor(filepath.Join(dir, "cursor")), Poll: 5 * time.Millisecond}
	done2 := make(chan struct{})
	go func() { fol2.Run(ctx2); close(done2) }()
	testwait.For(t, "the restarted sink to catch up", func() bool { return fol2.Status().Delivered.Seq == n.AuditHeadSeq() })
	cancel2()
	<-done2
	fs2.Close()
	last := seqsIn(t, filepath.Join(dir, "audit.log"))
	if got := last[len(last)-1]; got != n.AuditHeadSeq() {
		t.Fatalf("last seq in file %d, head %d", got, n.AuditHeadSeq())
	}
	for i := 1; i < len(last); i++ {
		if last[i] != last[i-1]+1 {
			t.Fatalf("duplicate or gap after restart: %d then %d", last[i-1], last[i])
		}
	}
}

func seqsIn(t *testing.T, path string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var e audit.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, e.Seq)
	}
	return out
}
