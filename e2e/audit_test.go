package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
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
	checkExactlyOnce(t, acked, auditEventsByRequest(t, c))
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

// auditEventsByRequest reads the whole audit log through c and counts the
// events of each request ID. Each read is itself audited, so it reads up
// to the head as it was before the first read, not until the log stops
// growing.
func auditEventsByRequest(t *testing.T, c *vault.Client) map[string]int {
	t.Helper()
	seen := map[string]int{}
	from, stopAt := 1, -1
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
	return seen
}

// checkExactlyOnce fails unless every acknowledged request has exactly
// one event and no request has two.
func checkExactlyOnce(t *testing.T, acked map[string]bool, seen map[string]int) {
	t.Helper()
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
}

// TestAuditExactlyOnceAcrossLeaderKill: 64 clients encrypt through all
// three nodes of a cluster (followers forward their audit batches); the
// leader is killed with SIGKILL mid-load and the load goes on through the
// failover. Every acknowledged request has exactly one event in the one
// cluster-wide chain, none has two, and the chain verifies on every node.
func TestAuditExactlyOnceAcrossLeaderKill(t *testing.T) {
	t.Parallel()
	const clients, killAfter, stopAfter = 64, 1000, 2500
	c := startCluster(t, clusterOpts{size: 3})
	leader := c.leader()
	write(t, leader.client(c.root), "transit/keys/audited", map[string]any{})
	var mu sync.Mutex
	acked := map[string]bool{}
	var count atomic.Int64
	var killOnce sync.Once
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := c.nodes[i%len(c.nodes)]
			cl := n.client(c.root)
			cl.SetClientTimeout(15 * time.Second)
			for j := 0; count.Load() < stopAfter && j < 2000; j++ {
				if !n.running() {
					return
				}
				s, err := cl.Logical().Write("transit/encrypt/audited", map[string]any{"plaintext": b64([]byte(fmt.Sprint(i, j)))})
				if err != nil {
					continue // failover in progress, or this node was killed
				}
				mu.Lock()
				acked[s.RequestID] = true
				mu.Unlock()
				if count.Add(1) == killAfter {
					killOnce.Do(leader.kill)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d encrypts acknowledged across the leader's SIGKILL", len(acked))
	if len(acked) < stopAfter {
		t.Fatalf("only %d requests were acknowledged (the cluster did not recover?)", len(acked))
	}
	var survivor *node
	for _, n := range c.nodes {
		if n != leader {
			survivor = n
		}
	}
	t0 := time.Now()
	checkExactlyOnce(t, acked, auditEventsByRequest(t, survivor.client(c.root)))
	t.Logf("counted the events in %s", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	leader.start()
	leader.unseal(c.shares[0], c.shares[1])
	t.Logf("restarted and unsealed the old leader in %s", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	defer func() { t.Logf("verified on every node in %s", time.Since(t0).Round(time.Millisecond)) }()
	for _, n := range c.nodes {
		cl := n.client(c.root)
		var last any
		ctx, cancel := context.WithTimeout(context.Background(), leaderWait)
		_, err := poll(ctx, nil, func() (struct{}, bool) {
			s, err := cl.Logical().Read("sys/audit/verify")
			if err != nil {
				last = err
				return struct{}{}, false
			}
			last = s.Data
			return struct{}{}, s.Data["valid"] == true
		})
		cancel()
		if err != nil {
			t.Fatalf("%s's audit chain does not verify: %v", n.nodeID, last)
		}
	}
}
