package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// A coalescer over a call that records its batches. The real path (the
// soft plugin process behind the Manager) is tested in manager_test.go.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	gate    chan struct{} // when set, the first call waits on it
	fail    error
}

func (r *recorder) call(_ context.Context, items []int) ([]string, error) {
	r.mu.Lock()
	r.batches = append(r.batches, append([]int(nil), items...))
	first, gate := len(r.batches) == 1, r.gate
	r.mu.Unlock()
	if first && gate != nil {
		<-gate
	}
	if r.fail != nil {
		return nil, r.fail
	}
	out := make([]string, len(items))
	for i, v := range items {
		out[i] = fmt.Sprint(v * 10)
	}
	return out, nil
}

func TestCoalescerIdleCallsAtOnce(t *testing.T) {
	r := &recorder{}
	c := newCoalescer(2, 100, r.call)
	out, err := c.do(context.Background(), []int{1, 2, 3})
	if err != nil || fmt.Sprint(out) != "[10 20 30]" {
		t.Fatalf("do = %v, %v", out, err)
	}
	if len(r.batches) != 1 {
		t.Fatalf("%d calls for one request", len(r.batches))
	}
}

// While a call is in flight, requests queue and go out together in the
// next call; each gets exactly its own results.
func TestCoalescerMergesQueuedRequests(t *testing.T) {
	r := &recorder{gate: make(chan struct{})}
	c := newCoalescer(1, 1000, r.call)
	var wg sync.WaitGroup
	results := make([][]string, 11)
	errs := make([]error, 11)
	wg.Add(1)
	go func() { defer wg.Done(); results[0], errs[0] = c.do(context.Background(), []int{0}) }()
	testwait.Within(t, 10*time.Second, "the condition", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.batches) == 1 })
	for i := 1; i <= 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], errs[i] = c.do(context.Background(), []int{i, 100 + i}) }()
	}
	testwait.Within(t, 10*time.Second, "the condition", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.queued == 20 })
	close(r.gate)
	wg.Wait()
	for i := 0; i <= 10; i++ {
		want := "[0]"
		if i > 0 {
			want = fmt.Sprintf("[%d %d]", i*10, (100+i)*10)
		}
		if errs[i] != nil || fmt.Sprint(results[i]) != want {
			t.Fatalf("request %d got %v, %v; want %s", i, results[i], errs[i], want)
		}
	}
	if len(r.batches) != 2 || len(r.batches[1]) != 20 {
		t.Fatalf("batches = %v, want the first alone and the 10 queued requests in one call", r.batches)
	}
}

func TestCoalescerRespectsMaxBatch(t *testing.T) {
	r := &recorder{gate: make(chan struct{})}
	c := newCoalescer(1, 4, r.call)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.do(context.Background(), []int{0}) }()
	testwait.Within(t, 10*time.Second, "the condition", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.batches) == 1 })
	for i := 1; i <= 6; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.do(context.Background(), []int{i, i}) }()
	}
	// A request bigger than the limit still goes, alone.
	wg.Add(1)
	go func() { defer wg.Done(); c.do(context.Background(), []int{7, 7, 7, 7, 7, 7}) }()
	testwait.Within(t, 10*time.Second, "the condition", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.queued == 18 })
	close(r.gate)
	wg.Wait()
	total := 0
	for _, b := range r.batches[1:] {
		if len(b) > 4 && len(b) != 6 {
			t.Fatalf("batch of %d items exceeds the limit: %v", len(b), r.batches)
		}
		total += len(b)
	}
	if total != 18 {
		t.Fatalf("items sent = %d, want 18: %v", total, r.batches)
	}
}

func TestCoalescerCallErrorReachesEveryRequestOfTheCall(t *testing.T) {
	boom := errors.New("plugin crashed")
	r := &recorder{gate: make(chan struct{}), fail: boom}
	c := newCoalescer(1, 100, r.call)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = c.do(context.Background(), []int{i}) }()
	}
	testwait.Within(t, 10*time.Second, "the condition", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.queued == 4 })
	close(r.gate)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Fatalf("request %d: err = %v, want the call's error", i, err)
		}
	}
}

func TestCoalescerCallerContextEndsItsWait(t *testing.T) {
	r := &recorder{gate: make(chan struct{})}
	defer close(r.gate)
	c := newCoalescer(1, 100, r.call)
	go c.do(context.Background(), []int{0})
	testwait.Within(t, 10*time.Second, "the condition", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.batches) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.do(ctx, []int{1}); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled request kept waiting for the backend")
	}
}

// A backend that answers with the wrong number of results, or panics,
// fails the requests of that call with an error; the coalescer keeps
// working afterwards (its in-flight slot is given back).
func TestCoalescerSurvivesABrokenBackend(t *testing.T) {
	calls := 0
	c := newCoalescer(1, 100, func(_ context.Context, items []int) ([]string, error) {
		calls++
		switch calls {
		case 1:
			return []string{"only one"}, nil
		case 2:
			panic("backend bug")
		}
		return make([]string, len(items)), nil
	})
	if _, err := c.do(context.Background(), []int{1, 2}); err == nil || !strings.Contains(err.Error(), "2 items") {
		t.Fatalf("short answer: err = %v", err)
	}
	if _, err := c.do(context.Background(), []int{1}); err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("panicking backend: err = %v", err)
	}
	if out, err := c.do(context.Background(), []int{1, 2, 3}); err != nil || len(out) != 3 {
		t.Fatalf("after the failures: %v, %v", out, err)
	}
}
