package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testwait"
)

// stuckHandler plays a leader that froze while handling one forwarded
// command: the first forwarded request containing marker blocks at stage
// until released or until its ctx ends (the server closing).
type stuckHandler struct {
	entered  chan struct{} // closed when the request reaches the stage
	release  chan struct{} // close to let it go on
	returned chan struct{} // closed when the hook returns
	once     sync.Once
}

func stickForwarded(n *Node, stage, marker string) *stuckHandler {
	s := &stuckHandler{entered: make(chan struct{}), release: make(chan struct{}), returned: make(chan struct{})}
	h := func(ctx context.Context, st string, req []byte) {
		if st != stage || !bytes.Contains(req, []byte(marker)) {
			return
		}
		first := false
		s.once.Do(func() { first = true })
		if !first {
			return
		}
		defer close(s.returned)
		close(s.entered)
		select {
		case <-s.release:
		case <-ctx.Done():
		}
	}
	n.forwardHook.Store(&h)
	return s
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// others returns two nodes of tc other than l.
func others(tc *testCluster, l *Node) (f, g *Node) {
	for _, n := range tc.nodes {
		if n == l {
			continue
		}
		if f == nil {
			f = n
		} else if g == nil {
			g = n
		}
	}
	return f, g
}

// markerEvent is an audit event whose operation names it.
func markerEvent(t *testing.T, node, marker string) []byte {
	t.Helper()
	b, err := (&audit.Event{Time: time.Now().UTC(), Node: node, Operation: marker, Outcome: audit.Allowed, Status: 200}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countMarker(t *testing.T, n *Node, marker string) int {
	t.Helper()
	c := 0
	if err := n.AuditEvents(1, func(e *audit.Event) error {
		if e.Operation == marker {
			c++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

// settle commits one more write through n and returns once every node in
// nodes applied it: whatever was going to apply before it has.
func settle(t *testing.T, n *Node, nodes ...*Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rev, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: "failover/settle", Value: []byte("x")}}})
	if err != nil {
		t.Fatalf("settling write through %s: %v", n.cfg.NodeID, err)
	}
	for _, o := range nodes {
		testwait.Within(t, 30*time.Second, o.cfg.NodeID+" to apply the settling write", func() bool { return o.fsm.AppliedIndex() >= rev })
	}
}

// A forwarded command whose leader stops answering (frozen before it
// applied the command, or after it committed it) is not left to time
// out: as soon as another node leads, the follower finds out whether the
// command committed and answers with its result, or sends it to the new
// leader. Either way it is applied exactly once.
func TestForwardedCommandSurvivesStuckLeader(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i, c := range []struct {
		stage  string
		events bool // an audit-only batch rather than a state change
	}{
		{hookApply, false},
		{hookAnswer, false},
		{hookApply, true},
		{hookAnswer, true},
	} {
		name := fmt.Sprintf("%s/events=%v", c.stage, c.events)
		marker := fmt.Sprintf("failover-marker-%d", i)
		l := tc.leader()
		f, g := others(tc, l)
		st := stickForwarded(l, c.stage, marker)

		type outcome struct {
			rev uint64
			err error
			at  time.Time
		}
		done := make(chan outcome, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var o outcome
			if c.events {
				var res *fsm.Result
				res, o.err = f.Apply(ctx, &fsm.Command{Events: [][]byte{markerEvent(t, f.cfg.NodeID, marker)}})
				if res != nil {
					o.rev = res.Index
				}
			} else {
				// Expect "absent": a second application would conflict.
				o.rev, o.err = f.Commit(ctx, &Txn{
					Expect: []fsm.Cond{{Key: marker, Revision: 0}},
					Writes: []Write{{Key: marker, Value: []byte(marker)}},
				})
			}
			o.at = time.Now()
			done <- o
		}()
		waitClosed(t, st.entered, name+": the forwarded command to reach the leader")
		if err := l.raft.LeadershipTransferToServer(raft.ServerID(g.cfg.NodeID), raft.ServerAddress(g.ClusterAddr())).Error(); err != nil {
			t.Fatalf("%s: leadership transfer: %v", name, err)
		}
		changed := time.Now()
		var o outcome
		select {
		case o = <-done:
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s: the forwarded command never returned", name)
		}
		if o.err != nil {
			t.Fatalf("%s: forwarded command after the leader changed: %v (answered %v after the change)", name, o.err, o.at.Sub(changed))
		}
		t.Logf("%s: forwarded command answered %v after the leadership change", name, o.at.Sub(changed).Round(time.Millisecond))

		// The frozen handler resumes; it must not apply the command again.
		close(st.release)
		waitClosed(t, st.returned, name+": the stuck handler to return")
		l.forwardHook.Store(nil)
		settle(t, tc.leader(), tc.nodes...)
		for _, n := range tc.nodes {
			if c.events {
				if got := countMarker(t, n, marker); got != 1 {
					t.Fatalf("%s: %s holds %d copies of the event, want 1", name, n.cfg.NodeID, got)
				}
			} else if rev, err := n.Revision(marker); err != nil || rev != o.rev {
				t.Fatalf("%s: %s has %s at revision %d (%v), want %d", name, n.cfg.NodeID, marker, rev, err, o.rev)
			}
		}
	}
}

// A leader killed after it committed a forwarded write but before it
// answered: the follower learns from the next leader that the write
// committed and answers with its result. With no next leader it reports
// ErrOutcomeUnknown, never an internal error.
func TestForwardedWriteCutByLeaderKill(t *testing.T) {
	tc := newTestCluster(t, 3)

	// Committed, then the leader dies: the answer comes from the next one.
	l := tc.leader()
	f, g := others(tc, l)
	const k1 = "failover-kill-1"
	st := stickForwarded(l, hookAnswer, k1)
	done := make(chan error, 1)
	var rev uint64
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		rev, err = f.Commit(ctx, &Txn{Expect: []fsm.Cond{{Key: k1}}, Writes: []Write{{Key: k1, Value: []byte("v")}}})
		done <- err
	}()
	waitClosed(t, st.entered, "the write to commit on the leader")
	killed := time.Now()
	go l.Shutdown()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the forwarded write never returned")
	}
	if err != nil {
		t.Fatalf("a committed write cut by a leader kill: %v, want its result", err)
	}
	t.Logf("committed write answered %v after the leader kill", time.Since(killed).Round(time.Millisecond))
	if r, err := f.Revision(k1); err != nil || r != rev {
		t.Fatalf("%s at revision %d (%v), want %d", k1, r, err, rev)
	}

	// Now f and g are left; the leader among them dies with an answer
	// due, and f alone cannot learn the outcome.
	testwait.Within(t, 30*time.Second, "a new leader", func() bool { return f.IsLeader() || g.IsLeader() })
	l2, f2 := f, g
	if g.IsLeader() {
		l2, f2 = g, f
	}
	const k2 = "failover-kill-2"
	st2 := stickForwarded(l2, hookAnswer, k2)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := f2.Commit(ctx, &Txn{Writes: []Write{{Key: k2, Value: []byte("v")}}})
		done <- err
	}()
	waitClosed(t, st2.entered, "the second write to commit on the leader")
	go l2.Shutdown()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the second forwarded write never returned")
	}
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("a write cut by a leader kill with no quorum left: %v, want ErrOutcomeUnknown", err)
	}
}

// The outcome log answers "not applied" only for entries it is sure to
// have seen; for any other it says it does not know.
func TestOutcomeLogKnowsWhatItSaw(t *testing.T) {
	var o outcomeLog
	o.init(10)
	entry := func(index uint64) (*raft.Log, applyToken) {
		tok := newApplyToken()
		return &raft.Log{Index: index, Type: raft.LogCommand, Extensions: tokenExtension(tok)}, tok
	}
	old, oldTok := entry(9) // replayed from before the process started
	o.record(old, &fsm.Result{Index: 9})
	if _, known := o.lookup(oldTok, 8); known {
		t.Fatal("an entry below the floor is reported as known")
	}
	l, tok := entry(10)
	o.record(l, &fsm.Result{Index: 10, FirstSeq: 3, LastSeq: 4})
	res, known := o.lookup(tok, 9)
	if r, err := decodeResult(res); !known || err != nil || r.Index != 10 || r.LastSeq != 4 {
		t.Fatalf("recorded entry: %v %v %+v", known, err, r)
	}
	if res, known := o.lookup(newApplyToken(), 9); !known || res != nil {
		t.Fatalf("an entry never applied: %v %v, want known and not applied", res, known)
	}
	if _, known := o.lookup(newApplyToken(), 8); known {
		t.Fatal("an entry that may lie below the floor is reported as not applied")
	}
	o.record(&raft.Log{Index: 11, Type: raft.LogCommand}, &fsm.Result{Index: 11}) // no token: not kept
	for i := uint64(0); i < maxOutcomes; i++ {
		l, _ := entry(12 + i)
		o.record(l, &fsm.Result{Index: 12 + i})
	}
	if _, known := o.lookup(tok, 9); known {
		t.Fatal("an evicted entry is still reported as known")
	}
	if _, known := o.lookup(newApplyToken(), 10); !known {
		t.Fatal("the floor moved past the entries still kept")
	}
	o.restored(1 << 40)
	if _, known := o.lookup(newApplyToken(), 1<<39); known {
		t.Fatal("an entry inside a restored snapshot is reported as not applied")
	}
}
