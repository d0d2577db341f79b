package e2e

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// A leader frozen with SIGSTOP or killed with SIGKILL: requests through
// the followers that were waiting on it (key use, whose audit batch the
// follower forwarded, and key creation, a forwarded state change) do not
// wait for the apply timeout, and do not fail because the connection to
// the leader died; they are answered as soon as the followers elect a new
// leader, with 200 (a change the old leader committed is not applied
// twice: the follower asks the new leader first). Nothing is ever a 500.
func TestFrozenLeaderDoesNotStallForwardedRequests(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{{"SIGSTOP", syscall.SIGSTOP}, {"SIGKILL", syscall.SIGKILL}} {
		t.Run(tc.name, func(t *testing.T) { leaderLostUnderLoad(t, tc.sig) })
	}
}

func leaderLostUnderLoad(t *testing.T, sig syscall.Signal) {
	c := startCluster(t, clusterOpts{size: 3})
	old := c.leader()
	write(t, old.client(c.root), "transit/keys/signalled", map[string]any{})
	var followers []*node
	for _, n := range c.nodes {
		if n != old {
			followers = append(followers, n)
		}
	}

	type result struct {
		start, end time.Time
		status     int // 200, or the error's status (0: no HTTP answer)
		what       string
	}
	var (
		mu      sync.Mutex
		results []result
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for i, f := range followers {
		for _, op := range []string{"encrypt", "create"} {
			wg.Add(1)
			go func(f *node, op string, w int) {
				defer wg.Done()
				cl := f.client(c.root)
				cl.SetClientTimeout(60 * time.Second)
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					r := result{start: time.Now(), what: f.nodeID + " " + op}
					var err error
					if op == "encrypt" {
						_, err = cl.Logical().Write("transit/encrypt/signalled", map[string]any{"plaintext": b64([]byte("x"))})
					} else {
						_, err = cl.Logical().Write(fmt.Sprintf("transit/keys/signalled-%d-%d", w, k), map[string]any{})
					}
					r.end, r.status = time.Now(), 200
					if err != nil {
						r.status = statusOf(err)
					}
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
				}
			}(f, op, i)
		}
	}
	// Some traffic first, so requests are in flight when the leader stops.
	testwait.Within(t, leaderWait, "requests before the freeze", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(results) >= 20
	})

	if err := old.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	if sig == syscall.SIGSTOP {
		defer old.cmd.Process.Signal(syscall.SIGCONT)
	}
	// Seen in the followers' logs: an API call would itself wait on the
	// audit log, which is what is under test.
	before := map[*node]int{}
	for _, f := range followers {
		before[f] = leaderTerms(f)
	}
	testwait.Within(t, leaderWait, "the followers to elect a new leader", func() bool {
		for _, f := range followers {
			if leaderTerms(f) > before[f] {
				return true
			}
		}
		return false
	})

	elected := time.Now()
	// Every worker completes a few requests started after the election.
	testwait.Within(t, leaderWait, "requests after the election", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := map[string]int{}
		for _, r := range results {
			if r.start.After(elected) && r.status == 200 {
				n[r.what]++
			}
		}
		return len(n) == 2*len(followers) && func() bool {
			for _, v := range n {
				if v < 3 {
					return false
				}
			}
			return true
		}()
	})

	close(stop)
	wg.Wait()

	var inFlight, slowest time.Duration
	firstOK := time.Duration(-1)
	for _, r := range results {
		if r.status == 500 || r.status == 0 {
			t.Errorf("%s started %v after the signal: status %d", r.what, r.start.Sub(signalled), r.status)
		}
		if r.start.Before(signalled) && r.end.After(signalled) {
			inFlight++
		}
		if r.start.Before(elected) && r.end.After(elected) {
			// In flight when the new leader was known: it must not have
			// waited for the old one.
			if r.status != 200 {
				t.Errorf("%s in flight at the election (started %v after the signal): status %d after %v",
					r.what, r.start.Sub(signalled), r.status, r.end.Sub(r.start))
			}
			slowest = max(slowest, r.end.Sub(elected))
		}
		if r.start.After(signalled) && r.status == 200 && (firstOK < 0 || r.end.Sub(signalled) < firstOK) {
			firstOK = r.end.Sub(signalled)
		}
	}
	t.Logf("leader got %s; new leader seen after %v; first 200 %v after the signal; requests in flight at the election answered within %v of it (%d were in flight at the signal)",
		sig, elected.Sub(signalled).Round(time.Millisecond), firstOK.Round(time.Millisecond), slowest.Round(time.Millisecond), inFlight)
}

// leaderTerms counts the times the node's logs say it became leader.
func leaderTerms(n *node) int {
	c := 0
	for _, p := range n.logs {
		b, _ := os.ReadFile(p)
		c += bytes.Count(b, []byte("entering leader state"))
	}
	return c
}
