package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/store"
)

// filesContaining lists the files under dir whose bytes contain any of
// needles.
func filesContaining(t *testing.T, dir string, needles ...[]byte) []string {
	t.Helper()
	var hits []string
	for _, p := range allFiles(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // removed meanwhile
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				hits = append(hits, p)
				break
			}
		}
	}
	return hits
}

// Destroyed means gone, on a 3-node cluster: a record is written (and
// rewritten) so that its ciphertext sits in every node's Raft log,
// snapshots and state file; a change that removes it with a purge request
// leaves, on every node, no file holding its old ciphertext.
func TestPurgeLeavesNoTraceOnAnyNode(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := tc.leader()
	material := make([]byte, 64<<10) // stands for key versions, large enough to get pages of its own
	rand.Read(material)
	var ciphertexts [][]byte
	for i := range 3 { // a create and two rotations
		material[0] = byte(i)
		if _, err := tc.nodes[i].Commit(ctx, &Txn{Writes: []Write{{Key: "transit/key/doomed", Value: material}}}); err != nil {
			t.Fatal(err)
		}
		ct, _, err := leader.fsm.Get("transit/key/doomed")
		if err != nil {
			t.Fatal(err)
		}
		ciphertexts = append(ciphertexts, ct)
		for _, n := range tc.nodes {
			if err := n.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	probe := ciphertexts[0][:64] // the oldest version's ciphertext, not the latest
	for _, n := range tc.nodes {
		if hits := filesContaining(t, n.cfg.DataDir, probe); len(hits) == 0 {
			t.Fatalf("%s: the old ciphertext is in no file before the purge; the test shows nothing", n.cfg.NodeID)
		}
	}
	// The destruction: the record without its material, and the purge request.
	idx, err := tc.nodes[1].Commit(ctx, &Txn{Writes: []Write{
		{Key: "transit/key/doomed", Value: []byte(`{"state":"destroyed"}`)}, store.PurgeWrite("transit/key/doomed")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		testwait.Within(t, 30*time.Second, n.cfg.NodeID+" purged", func() bool { return n.PurgedIndex() >= idx })
	}
	for _, n := range tc.nodes {
		needles := [][]byte{material[1:4097]}
		for _, ct := range ciphertexts {
			needles = append(needles, ct[:64], ct[len(ct)-64:])
		}
		if hits := filesContaining(t, n.cfg.DataDir, needles...); len(hits) > 0 {
			t.Errorf("%s: destroyed ciphertext still on disk in %v", n.cfg.NodeID, hits)
		}
	}
	// The cluster works on: writes commit and read back everywhere.
	if _, err := tc.nodes[2].Commit(ctx, &Txn{Writes: []Write{{Key: "after", Value: []byte("1")}}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		testwait.Within(t, 10*time.Second, n.cfg.NodeID+" applied the write after the purge", func() bool {
			v, _, err := n.Read("after")
			return err == nil && string(v) == "1"
		})

	}
	// Rewritten raft.db and state.db open again: a node restarts, unseals
	// and serves, and the cluster keeps committing with it.
	old := tc.nodes[2]
	cfg := old.cfg
	cfg.BindAddr = old.ClusterAddr() // the address the others know
	old.Shutdown()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("restart after the purge: %v", err)
	}
	t.Cleanup(func() { n.Shutdown() })
	for _, k := range tc.shares[1:] {
		if _, err := n.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tc.nodes[0].Commit(ctx, &Txn{Writes: []Write{{Key: "after", Value: []byte("2")}}}); err != nil {
		t.Fatal(err)
	}
	testwait.Within(t, 20*time.Second, "the restarted node applied a new write", func() bool {
		v, _, err := n.Read("after")
		return err == nil && string(v) == "2"
	})

}

// The purge leaves one snapshot: older ones are overwritten with zeros
// before they go (a second link to an old snapshot's file stands for the
// blocks a plain unlink leaves behind), and so is what the snapshot store
// never lists — a snapshot interrupted by a crash (.tmp) and a directory
// without a readable meta — though each holds a full copy of the state.
func TestPurgeZeroesOldAndInterruptedSnapshots(t *testing.T) {
	tc := newTestCluster(t, 1)
	n := tc.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	material := make([]byte, 64<<10)
	rand.Read(material)
	var needles [][]byte
	for i := range 2 {
		material[0] = byte(i)
		if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: "transit/key/doomed", Value: material}}}); err != nil {
			t.Fatal(err)
		}
		ct, _, err := n.fsm.Get("transit/key/doomed")
		if err != nil {
			t.Fatal(err)
		}
		needles = append(needles, ct[:64], ct[len(ct)-64:])
		if err := n.Snapshot(); err != nil {
			t.Fatal(err)
		}
	}
	snaps, err := n.snaps.List()
	if err != nil || len(snaps) < 2 {
		t.Fatalf("snapshots before the purge: %v, %v", snaps, err)
	}
	snapDir := filepath.Join(n.cfg.DataDir, "snapshots")
	oldState := filepath.Join(snapDir, snaps[len(snaps)-1].ID, "state.bin")
	state, err := os.ReadFile(oldState)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(state, needles[0]) {
		t.Fatal("the oldest snapshot does not hold the old ciphertext; the test shows nothing")
	}
	witness := filepath.Join(t.TempDir(), "witness")
	if err := os.Link(oldState, witness); err != nil {
		t.Skipf("hard links unsupported here: %v", err)
	}
	// What a kill -9 during a snapshot leaves, and a directory whose meta
	// cannot be read.
	for _, d := range []string{"1-2-1.tmp", "not-a-snapshot"} {
		if err := os.MkdirAll(filepath.Join(snapDir, d), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(snapDir, d, "state.bin"), state, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := n.Commit(ctx, &Txn{Writes: []Write{
		{Key: "transit/key/doomed", Value: []byte(`{"state":"destroyed"}`)}, store.PurgeWrite("transit/key/doomed")}})
	if err != nil {
		t.Fatal(err)
	}
	testwait.Within(t, 30*time.Second, "the purge", func() bool { return n.PurgedIndex() >= idx })
	if hits := filesContaining(t, n.cfg.DataDir, needles...); len(hits) > 0 {
		t.Errorf("destroyed ciphertext still on disk in %v", hits)
	}
	left, err := os.ReadDir(snapDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 {
		t.Errorf("snapshots/ after the purge holds %d entries, want the newest snapshot only: %v", len(left), left)
	}
	w, err := os.ReadFile(witness)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != len(state) || !bytes.Equal(w, make([]byte, len(w))) {
		t.Errorf("an old snapshot was removed without its contents being overwritten (still holds the ciphertext: %v)", bytes.Contains(w, needles[0]))
	}
}

// A write prepared before a key's destruction and refused after it (a
// rotation racing the destroy) stays in the Raft log with the material it
// carried, after the destruction's purge: every node purges again past
// it, so no disk keeps that entry.
func TestPurgeAgainAfterStaleWrite(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	material := make([]byte, 64<<10)
	rand.Read(material)
	rev, err := tc.nodes[0].Commit(ctx, &Txn{Writes: []Write{{Key: "transit/key/doomed", Value: material}}})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := tc.nodes[1].Commit(ctx, &Txn{Expect: []fsm.Cond{{Key: "transit/key/doomed", Revision: rev}}, Writes: []Write{
		{Key: "transit/key/doomed", Value: []byte(`{"state":"destroyed"}`)}, store.PurgeWrite("transit/key/doomed")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		testwait.Within(t, 30*time.Second, n.cfg.NodeID+" purged", func() bool { return n.PurgedIndex() >= idx })
	}
	// The rotation read the key before its destruction.
	material[0] ^= 1
	_, err = tc.nodes[2].Commit(ctx, &Txn{Expect: []fsm.Cond{{Key: "transit/key/doomed", Revision: rev}},
		Writes: []Write{{Key: "transit/key/doomed", Value: material}}})
	if !errors.Is(err, fsm.ErrConflict) {
		t.Fatalf("stale write: %v, want a conflict", err)
	}
	// Its entry, as the Raft log holds it.
	leader := tc.leader()
	var needle []byte
	var stale uint64
	last, _ := leader.logs.LastIndex()
	for i := idx + 1; i <= last && needle == nil; i++ {
		var l raft.Log
		if leader.logs.GetLog(i, &l) != nil || l.Type != raft.LogCommand {
			continue
		}
		cmd, err := fsm.DecodeCommand(l.Data)
		if err != nil {
			continue
		}
		for _, op := range cmd.Ops {
			if op.Key == "transit/key/doomed" && len(op.Value) > 1024 {
				needle, stale = op.Value[100:164], i
			}
		}
	}
	if needle == nil {
		t.Fatal("the refused entry is not in the leader's log; the test shows nothing")
	}
	for _, n := range tc.nodes {
		testwait.Within(t, 30*time.Second, n.cfg.NodeID+" purged past the refused write", func() bool { return n.PurgedIndex() >= stale })
		if hits := filesContaining(t, n.cfg.DataDir, needle); len(hits) > 0 {
			t.Errorf("%s: the refused write's material is still on disk in %v", n.cfg.NodeID, hits)
		}
	}
}

// The nodes purge one after the other, the leader last: each holds its
// raft.db and state store exclusively while it rewrites them, and if all
// did so at once no quorum would be left to commit. The stall of each
// node is logged (the figure the purge's staggering is measured by).
// stallWindow is when a node's purge held its files.
type stallWindow struct{ from, to time.Time }

func TestPurgeStaggersNodes(t *testing.T) {
	var mu sync.Mutex
	stalls := map[string][]stallWindow{}
	hook := func(n *Node, from, to time.Time) {
		mu.Lock()
		defer mu.Unlock()
		stalls[n.cfg.NodeID] = append(stalls[n.cfg.NodeID], stallWindow{from, to})
	}
	onPurgeStall.Store(&hook)
	t.Cleanup(func() { onPurgeStall.Store(nil) })
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	val := make([]byte, 64<<10)
	for range 32 { // 8 records of 64 KiB, each rewritten 32 times: files worth compacting
		var w []Write
		for j := range 8 {
			rand.Read(val[:32])
			w = append(w, Write{Key: fmt.Sprintf("transit/key/k%d", j), Value: bytes.Clone(val)})
		}
		tc.commitRetrying(ctx, &Txn{Writes: w})
	}
	// The order is the leader's: a round in which leadership moved (a
	// loaded machine) says nothing about it, and is run again, as the
	// cluster itself would purge again on the next request.
	for round := 1; ; round++ {
		mu.Lock()
		clear(stalls)
		mu.Unlock()
		leader := tc.leader()
		term := leader.raft.CurrentTerm()
		idx := tc.commitRetrying(ctx, &Txn{Writes: []Write{{Key: "transit/key/k0", Delete: true}, store.PurgeWrite(fmt.Sprintf("transit/key/k0 round %d", round))}})
		for _, n := range tc.nodes {
			testwait.Within(t, time.Minute, n.cfg.NodeID+" purged", func() bool { return n.PurgedIndex() >= idx })
		}
		if leader.IsLeader() && leader.raft.CurrentTerm() == term {
			mu.Lock()
			checkStaggered(t, stalls, leader.cfg.NodeID)
			mu.Unlock()
			return
		}
		if round == 3 {
			t.Fatal("leadership moved in each of 3 purge rounds")
		}
		t.Logf("round %d: leadership moved during the purge; again", round)
	}
}

// commitRetrying commits txn (whose writes may be applied twice) through
// the current leader, again after a leadership change, as a client of the
// cluster does.
func (tc *testCluster) commitRetrying(ctx context.Context, txn *Txn) uint64 {
	tc.t.Helper()
	for {
		idx, err := tc.leader().Commit(ctx, txn)
		if err == nil {
			return idx
		}
		if ctx.Err() != nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrOutcomeUnknown) ||
			errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrNotLeader)) {
			tc.t.Fatal(err)
		}
	}
}

// checkStaggered checks one round's stall windows: one per node, the
// followers one at a time, the leader after both.
func checkStaggered(t *testing.T, stalls map[string][]stallWindow, leaderID string) {
	t.Helper()
	var first time.Time
	for _, ws := range stalls {
		if len(ws) != 1 {
			t.Fatalf("stalls: %v, want one purge per node", stalls)
		}
		if w := ws[0]; first.IsZero() || w.from.Before(first) {
			first = w.from
		}
	}
	var followers []stallWindow
	for id, ws := range stalls {
		w := ws[0]
		role := "follower"
		if id == leaderID {
			role = "leader"
		} else {
			followers = append(followers, w)
		}
		t.Logf("%s (%s): stalled %v, from +%v", id, role, w.to.Sub(w.from).Round(time.Millisecond), w.from.Sub(first).Round(time.Millisecond))
	}
	lw := stalls[leaderID][0]
	for _, f := range followers {
		if lw.from.Before(f.to) {
			t.Errorf("the leader stalled before a follower was done: leader from +%v, follower until +%v", lw.from.Sub(first), f.to.Sub(first))
		}
	}
	if len(followers) == 2 && followers[0].from.Before(followers[1].to) && followers[1].from.Before(followers[0].to) {
		t.Errorf("both followers stalled at once, leaving the leader without a quorum")
	}
}
