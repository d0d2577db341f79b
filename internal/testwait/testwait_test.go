package testwait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	var n atomic.Int32
	if !Poll(10*time.Second, func() bool { return n.Add(1) >= 5 }) {
		t.Fatal("a condition that comes true was not seen")
	}
	if n.Load() != 5 {
		t.Fatalf("polled %d times after it held, want 5 in all", n.Load())
	}
	start := time.Now()
	if Poll(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds was reported")
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("gave up before the deadline")
	}
}

type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = format
}

func TestWithinNamesWhatNeverHappened(t *testing.T) {
	r := &fatalRecorder{TB: t}
	Within(r, 5*time.Millisecond, "the leader", func() bool { return false })
	if r.msg == "" {
		t.Fatal("a timeout did not fail the test")
	}
}
