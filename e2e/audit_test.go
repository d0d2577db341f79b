package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestAuditExactlyOnceUnderLoadAndKill9: 64 concurrent clients encrypt
// against a real node; the node is killed with SIGKILL mid-load and
// restarted. Every acknowledged request has exactly one event in the
// replicated audit log, no request has two, and the chain verifies.
func TestAuditExactlyOnceUnderLoadAndKill9(t *testing.T) {
	t.Parallel()
	const clients, killAfter = 64, 1500
	n := newConfigNode(t)
	n.start()
	shares, _, root := n.initNode(1, 1)
	n.unseal(shares[0])
	c := n.client(root)
	write(t, c, "transit/keys/audited", map[string]any{})

	var mu sync.Mutex
	acked := map[string]bool{}
	var count atomic.Int64
	proc := n.cmd.Process
	var killOnce sync.Once
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := n.client(root)
			for j := 0; j < 1000; j++ { // bounded: the kill ends it much sooner
				s, err := cl.Logical().Write("transit/encrypt/audited", map[string]any{"plaintext": b64([]byte(fmt.Sprint(i, j)))})
				if err != nil {
					return // the node is gone
				}
				mu.Lock()
				acked[s.RequestID] = true
				mu.Unlock()
				if count.Add(1) == killAfter {
					killOnce.Do(func() { proc.Signal(syscall.SIGKILL) })
				}
			}
		}()
	}
	wg.Wait()
	killOnce.Do(func() { proc.Signal(syscall.SIGKILL) })
	<-n.exited
	t.Logf("%d encrypts acknowledged before SIGKILL", len(acked))
	if len(acked) < killAfter {
		t.Fatalf("only %d requests were acknowledged", len(acked))
	}

	n.start()
	n.unseal(shares[0])
	c = n.client(root)
	seen := map[string]int{}
	from := 1
	// Each read is itself audited, so read up to the head as it was
	// before the first read, not until the log stops growing.
	stopAt := -1
	for stopAt < 0 || from <= stopAt {
		s, err := c.Logical().ReadWithData("sys/audit/events", map[string][]string{"from_seq": {fmt.Sprint(from)}, "limit": {"10000"}})
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := s.Data["events"].([]any)
		for _, e := range evs {
			id, _ := e.(map[string]any)["request_id"].(string)
			seen[id]++
		}
		if stopAt < 0 {
			stopAt = num(t, s.Data["head"].(map[string]any), "seq")
		}
		next := num(t, s.Data, "next_seq")
		if len(evs) == 0 || next == from {
			break
		}
		from = next
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Fatalf("acknowledged request %s has %d audit events, want exactly 1", id, seen[id])
		}
	}
	for id, k := range seen {
		if id != "" && k > 1 {
			t.Fatalf("request %s has %d audit events", id, k)
		}
	}
	v := read(t, c, "sys/audit/verify")
	if !boolean(t, v, "valid") {
		t.Fatalf("audit chain after SIGKILL: %v", v)
	}

	// A denied request is recorded too.
	bad := n.client("kr.not-a-token")
	_, err := bad.Logical().Write("transit/encrypt/audited", map[string]any{"plaintext": b64([]byte("x"))})
	if statusOf(err) != 403 {
		t.Fatalf("bad token: %v", err)
	}
	s, err := c.Logical().ReadWithData("sys/audit/events", map[string][]string{"outcome": {"denied"}})
	if err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.Data["events"].([]any); len(evs) != 1 {
		t.Fatalf("denied events: %d", len(evs))
	}
}
