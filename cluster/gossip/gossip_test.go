package gossip

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"

	"github.com/keyraft/keyraft/internal/testwait"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func testMeta(id string) Meta {
	return Meta{
		NodeID:      id,
		APIAddr:     "https://" + id + ".test:8200",
		ClusterAddr: id + ".test:8201",
		Version:     "0.1.0-test",
	}
}

// startNode starts a node on a free loopback port; it is shut down when
// the test ends.
func startNode(t *testing.T, id string, key []byte, onChange func()) *Gossip {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Key = key
	cfg.OnChange = onChange
	// Warnings and errors only; to stderr rather than t.Log, because
	// memberlist timers may still log after the test has returned.
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: os.Stderr})
	g, err := Start(cfg, testMeta(id))
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(func() { _ = g.Shutdown() })
	return g
}

// cluster starts n nodes ("n1".."nN") and joins them to the first.
func cluster(t *testing.T, n int) ([]*Gossip, []byte) {
	t.Helper()
	key := newKey(t)
	nodes := make([]*Gossip, n)
	for i := range nodes {
		nodes[i] = startNode(t, fmt.Sprintf("n%d", i+1), key, nil)
	}
	for _, g := range nodes[1:] {
		if k, err := g.Join([]string{nodes[0].Addr()}); err != nil || k != 1 {
			t.Fatalf("join: %d, %v", k, err)
		}
	}
	for _, g := range nodes {
		for _, o := range nodes {
			waitState(t, g, o.cfg.NodeID, Alive)
		}
	}
	return nodes, key
}

// waitState waits until observer sees nodeID in state st.
func waitState(t *testing.T, observer *Gossip, nodeID string, st State) Member {
	t.Helper()
	var m Member
	testwait.Within(t, 10*time.Second, fmt.Sprintf("%s to see %s %s", observer.cfg.NodeID, nodeID, st), func() bool {
		var ok bool
		m, ok = observer.Member(nodeID)
		return ok && m.State == st
	})

	return m
}

func TestThreeNodesSeeEachOther(t *testing.T) {
	var changes atomic.Int64
	key := newKey(t)
	a := startNode(t, "a", key, func() { changes.Add(1) })
	b := startNode(t, "b", key, nil)
	c := startNode(t, "c", key, nil)
	if n, err := b.Join([]string{a.Addr()}); err != nil || n != 1 {
		t.Fatalf("b join: %d, %v", n, err)
	}
	if n, err := c.Join([]string{b.Addr()}); err != nil || n != 1 {
		t.Fatalf("c join: %d, %v", n, err)
	}
	nodes := []*Gossip{a, b, c}
	for _, g := range nodes {
		for _, o := range nodes {
			m := waitState(t, g, o.cfg.NodeID, Alive)
			if m.Meta != testMeta(o.cfg.NodeID) {
				t.Errorf("%s sees %s meta %+v", g.cfg.NodeID, o.cfg.NodeID, m.Meta)
			}
			if m.GossipAddr != o.Addr() {
				t.Errorf("%s sees %s at %s, want %s", g.cfg.NodeID, o.cfg.NodeID, m.GossipAddr, o.Addr())
			}
		}
		ms := g.Members()
		if len(ms) != 3 || ms[0].Meta.NodeID != "a" || ms[1].Meta.NodeID != "b" || ms[2].Meta.NodeID != "c" {
			t.Errorf("%s: Members() = %+v, want a, b, c in order", g.cfg.NodeID, ms)
		}
	}
	testwait.Within(t, 10*time.Second, "OnChange on a", func() bool { return changes.Load() > 0 })
	if _, ok := a.Member("nobody"); ok {
		t.Error("Member(nobody) found")
	}
}

func TestSetMetaPropagates(t *testing.T) {
	nodes, _ := cluster(t, 3)
	m := testMeta("n2")
	m.Sealed = true
	m.Version = "0.2.0"
	if err := nodes[1].SetMeta(m); err != nil {
		t.Fatal(err)
	}
	for _, g := range nodes {
		testwait.Within(t, 10*time.Second, g.cfg.NodeID+" to see n2 sealed", func() bool {
			got, ok := g.Member("n2")
			return ok && got.Meta == m && got.State == Alive
		})

	}
	if err := nodes[1].SetMeta(testMeta("other")); err == nil {
		t.Error("SetMeta accepted another node's ID")
	}
}

func TestKilledNodeIsFailed(t *testing.T) {
	nodes, _ := cluster(t, 3)
	victim := nodes[2]
	killed := time.Now()
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, g := range nodes[:2] {
		m := waitState(t, g, "n3", Dead)
		t.Logf("%s saw n3 failed %v after the kill (state %q)", g.cfg.NodeID, m.Since.Sub(killed).Round(time.Millisecond), m.State)
	}
	// Dead members stay in the table until forgotten.
	if ms := nodes[0].Members(); len(ms) != 3 || ms[2].State != Dead {
		t.Fatalf("Members() = %+v", ms)
	}
	if nodes[0].Forget("n2") {
		t.Error("Forget dropped a live member")
	}
	if !nodes[0].Forget("n3") {
		t.Error("Forget(n3) = false")
	}
	if _, ok := nodes[0].Member("n3"); ok || len(nodes[0].Members()) != 2 {
		t.Errorf("n3 still listed after Forget: %+v", nodes[0].Members())
	}
	if err := victim.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if _, err := victim.Join([]string{nodes[0].Addr()}); err != ErrClosed {
		t.Errorf("Join after Shutdown: %v", err)
	}
	if err := victim.Leave(time.Second); err != ErrClosed {
		t.Errorf("Leave after Shutdown: %v", err)
	}
}

func TestLeaveIsLeft(t *testing.T) {
	nodes, _ := cluster(t, 3)
	leaver := nodes[1]
	if err := leaver.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Gossip{nodes[0], nodes[2]} {
		waitState(t, g, "n2", Left)
	}
	if err := leaver.SetMeta(testMeta("n2")); err != ErrLeft {
		t.Errorf("SetMeta after Leave: %v", err)
	}
	if err := leaver.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Shutting down after leaving does not turn Left into Dead.
	if m, _ := nodes[0].Member("n2"); m.State != Left {
		t.Errorf("n2 is %s after shutdown", m.State)
	}
}

// OnChange runs on its own goroutine and may call back into Gossip, also
// while Shutdown is under way.
func TestOnChangeCallsBack(t *testing.T) {
	var self atomic.Pointer[Gossip]
	var calls atomic.Int64
	onChange := func() {
		calls.Add(1)
		g := self.Load()
		if g == nil {
			return
		}
		m, _ := g.Member("b")
		meta := testMeta("a")
		meta.Sealed = m.State != Alive
		if err := g.SetMeta(meta); err != nil && err != ErrClosed {
			t.Errorf("SetMeta from OnChange: %v", err)
		}
	}
	key := newKey(t)
	a := startNode(t, "a", key, onChange)
	self.Store(a)
	b := startNode(t, "b", key, nil)
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, "b", Alive)
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, "b", Dead)
	testwait.Within(t, 10*time.Second, "a to advertise sealed", func() bool {
		m, _ := a.Member("a")
		return m.Meta.Sealed
	})

	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	n := calls.Load()
	if n == 0 {
		t.Fatal("OnChange never called")
	}
	// The notifier has stopped: a change now (b's leave notice turning
	// Dead into Left) must not reach OnChange.
	(*delegate)(a).NotifyMsg(append([]byte{msgLeaving}, "b"...))
	if calls.Load() != n {
		t.Error("OnChange called after Shutdown returned")
	}
}

// The leave notice and memberlist's leave message travel separately; the
// result is Left whichever arrives first. Driven through the delegate with
// a made-up node so that the order is fixed.
func TestLeaveNoticeEitherOrder(t *testing.T) {
	g := startNode(t, "a", newKey(t), nil)
	d := (*delegate)(g)
	for _, noticeFirst := range []bool{true, false} {
		meta, _ := testMeta("ghost").Encode()
		n := &memberlist.Node{Name: "ghost", Addr: net.IPv4(127, 0, 0, 1), Port: 1, Meta: meta}
		d.NotifyJoin(n)
		notice := append([]byte{msgLeaving}, "ghost"...)
		if noticeFirst {
			d.NotifyMsg(notice)
			d.NotifyLeave(n)
		} else {
			d.NotifyLeave(n)
			if m, _ := g.Member("ghost"); m.State != Dead {
				t.Fatalf("before the notice: %s", m.State)
			}
			d.NotifyMsg(notice)
		}
		if m, _ := g.Member("ghost"); m.State != Left {
			t.Errorf("notice first %v: %s, want left", noticeFirst, m.State)
		}
		// Back again: alive, and a later failure is a failure.
		d.NotifyJoin(n)
		d.NotifyLeave(n)
		if m, _ := g.Member("ghost"); m.State != Dead {
			t.Errorf("notice first %v, after rejoin: %s, want failed", noticeFirst, m.State)
		}
		if !g.Forget("ghost") {
			t.Fatal("Forget(ghost) = false")
		}
	}
	d.NotifyMsg(append([]byte{msgLeaving}, "nobody"...)) // unknown: ignored
	d.NotifyMsg([]byte{msgLeaving})
	d.NotifyMsg(nil)
	if len(g.Members()) != 1 {
		t.Errorf("Members() = %+v", g.Members())
	}
	if err := g.Leave(time.Second); err != nil { // alone: nobody to tell
		t.Fatal(err)
	}
	if m, _ := g.Member("a"); m.State != Left {
		t.Errorf("self after Leave: %s", m.State)
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	nodes, key := cluster(t, 2)
	intruder := startNode(t, "intruder", newKey(t), nil)
	if n, err := intruder.Join([]string{nodes[0].Addr(), nodes[1].Addr()}); err == nil || n != 0 {
		t.Errorf("join with the wrong key: %d, %v", n, err)
	}
	// Also the other way round: a member pulling the intruder in.
	if n, err := nodes[1].Join([]string{intruder.Addr()}); err == nil || n != 0 {
		t.Errorf("join to the intruder: %d, %v", n, err)
	}
	// Barrier: a good node joins and becomes known everywhere; by then any
	// gossip the intruder caused would have been processed as well.
	late := startNode(t, "late", key, nil)
	if _, err := late.Join([]string{nodes[1].Addr()}); err != nil {
		t.Fatal(err)
	}
	for _, g := range append(nodes, late) {
		waitState(t, g, "late", Alive)
		if _, ok := g.Member("intruder"); ok {
			t.Errorf("%s lists the intruder", g.cfg.NodeID)
		}
	}
	if ms := intruder.Members(); len(ms) != 1 {
		t.Errorf("intruder sees %+v", ms)
	}
}

func TestRestartedNodeComesBack(t *testing.T) {
	nodes, key := cluster(t, 3)
	old := nodes[2]
	oldAddr := old.Addr()
	if err := old.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, g := range nodes[:2] {
		waitState(t, g, "n3", Dead)
	}
	again := startNode(t, "n3", key, nil)
	for i := 0; again.Addr() == oldAddr; i++ { // the kernel may hand out the old port again
		if i == 5 {
			t.Fatalf("restarted node keeps getting %s; the test wants a new port", oldAddr)
		}
		_ = again.Shutdown()
		again = startNode(t, "n3", key, nil)
	}
	// Peers accept the old name at a new address only once the dead entry
	// is older than DeadNodeReclaimTime, so keep joining until they do.
	var lastJoin time.Time
	testwait.Within(t, 15*time.Second, "n3 to be alive again at its new address", func() bool {
		back := true
		for _, g := range nodes[:2] {
			m, ok := g.Member("n3")
			back = back && ok && m.State == Alive && m.GossipAddr == again.Addr()
		}
		if !back && time.Since(lastJoin) > 500*time.Millisecond {
			lastJoin = time.Now()
			_, _ = again.Join([]string{nodes[0].Addr()})
		}
		return back
	})

	for _, g := range nodes[:2] {
		waitState(t, again, g.cfg.NodeID, Alive)
	}
}

func TestStartRejectsBadInput(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeID = "a"
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Key = newKey(t)
	if _, err := Start(cfg, testMeta("b")); err == nil {
		t.Error("Start accepted a meta for another node")
	}
	big := testMeta("a")
	big.Version = strings.Repeat("9", MaxMetaSize)
	if _, err := Start(cfg, big); err == nil {
		t.Error("Start accepted an oversized meta")
	}
	cfg.Key = cfg.Key[:16]
	if _, err := Start(cfg, testMeta("a")); err == nil {
		t.Error("Start accepted a 16-byte key")
	}
}
