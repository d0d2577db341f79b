package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster/link"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testwait"
)

// testCluster is n real nodes in this process: Raft over the mutual-TLS
// cluster port on 127.0.0.1, gossip on real sockets, joined through the
// challenge protocol (the leader's side called directly; the HTTP path is
// covered by the e2e tests).
type testCluster struct {
	t      *testing.T
	nodes  []*Node
	shares [][]byte
}

func clusterNodeConfig(t testing.TB, id string) Config {
	c := testConfig(t, t.TempDir())
	c.NodeID = id
	c.APIAddr = "http://" + id + ".invalid"
	c.LeaderContactLease = time.Second
	c.Autopilot.ServerStabilizationTime = 200 * time.Millisecond
	return c
}

func newTestCluster(t *testing.T, size int) *testCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc := &testCluster{t: t}
	first, err := New(clusterNodeConfig(t, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Shutdown() })
	res, err := first.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	tc.shares = res.Keys
	for _, k := range res.Keys[:2] {
		if _, err := first.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	tc.nodes = append(tc.nodes, first)
	for i := 2; i <= size; i++ {
		tc.join(ctx, clusterNodeConfig(t, fmt.Sprintf("n%d", i)))
	}
	tc.waitVoters(size)
	return tc
}

// admitVia answers a joining node's request through whichever node leads.
func (tc *testCluster) admitVia(ctx context.Context, a JoinAnswer) (*JoinGrant, error) {
	return tc.leader().AdmitNode(ctx, a)
}

func (tc *testCluster) join(ctx context.Context, cfg Config) *Node {
	tc.t.Helper()
	n, err := New(cfg)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(func() { n.Shutdown() })
	ch, err := tc.leader().JoinChallenge(ctx, cfg.NodeID)
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := n.PrepareJoin(ch, tc.admitVia); err != nil {
		tc.t.Fatal(err)
	}
	if st := n.SealStatus(); !st.Initialized || !st.Sealed || st.Threshold != len(tc.shares)-1 {
		tc.t.Fatalf("joining node's seal status: %+v", st)
	}
	for _, k := range tc.shares[1:] {
		if _, err := n.Unseal(ctx, k); err != nil {
			tc.t.Fatalf("unsealing joining node %s: %v", cfg.NodeID, err)
		}
	}
	if n.Sealed() {
		tc.t.Fatalf("%s is still sealed after its shares", cfg.NodeID)
	}
	tc.nodes = append(tc.nodes, n)
	return n
}

func (tc *testCluster) leader() *Node {
	tc.t.Helper()
	var l *Node
	testwait.Within(tc.t, 20*time.Second, "a leader", func() bool {
		for _, n := range tc.nodes {
			if n.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})

	return l
}

func (tc *testCluster) waitVoters(want int) {
	tc.t.Helper()
	testwait.Within(tc.t, 30*time.Second, fmt.Sprintf("%d voters", want), func() bool {
		peers, err := tc.leader().Peers()
		if err != nil {
			return false
		}
		v := 0
		for _, p := range peers {
			if p.Voter {
				v++
			}
		}
		return v == want
	})

}

// Writes sent to followers are forwarded to the leader, and the follower
// answers only once its own state has them (read-your-writes).
func TestClusterForwardsWritesAndReadsOwnWrites(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 3*20)
	for _, n := range tc.nodes {
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				key := fmt.Sprintf("test/%s/%d", n.cfg.NodeID, i)
				if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: key, Value: []byte(key)}}}); err != nil {
					errs <- fmt.Errorf("%s: commit %s: %w", n.cfg.NodeID, key, err)
					return
				}
				v, _, err := n.Read(key)
				if err != nil || string(v) != key {
					errs <- fmt.Errorf("%s: read own write %s: %q %v", n.cfg.NodeID, key, v, err)
					return
				}
			}
		}(n)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Conflicts travel back from the leader intact.
	f := tc.nodes[1]
	if f.IsLeader() {
		f = tc.nodes[2]
	}
	_, rev, _ := f.Read("test/n1/0")
	if _, err := f.Commit(ctx, &Txn{Expect: []fsm.Cond{{Key: "test/n1/0", Revision: rev + 1000}}, Writes: []Write{{Key: "test/n1/0", Value: []byte("x")}}}); !errors.Is(err, fsm.ErrConflict) {
		t.Fatalf("stale write through a follower: %v, want a conflict", err)
	}
	// Audit events recorded on followers land in the one chain.
	for _, n := range tc.nodes {
		if err := n.AuditLog().Record(ctx, &audit.Event{Time: time.Now().UTC(), Node: n.cfg.NodeID, Operation: "test", Outcome: audit.Allowed, Status: 200}); err != nil {
			t.Fatalf("%s: record: %v", n.cfg.NodeID, err)
		}
	}
	v, err := tc.nodes[0].VerifyAudit()
	if err != nil || v.Problem != nil || v.Events < 3 {
		t.Fatalf("audit chain after events from every node: %+v %v", v, err)
	}
}

// The join protocol refuses wrong answers, reused and unknown challenges,
// an existing node ID, and a node that already has state; remove-peer
// refuses the last voter and unknown IDs.
func TestClusterJoinRefusals(t *testing.T) {
	tc := newTestCluster(t, 1)
	ctx := context.Background()
	l := tc.leader()
	if _, err := l.JoinChallenge(ctx, "n1"); !errors.Is(err, ErrNodeExists) {
		t.Fatalf("challenge for an existing node ID: %v", err)
	}
	if _, err := l.JoinChallenge(ctx, "bad id!"); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("challenge for a malformed ID: %v", err)
	}
	if _, err := l.AdmitNode(ctx, JoinAnswer{NodeID: "n9", ClusterAddr: "127.0.0.1:1", Answer: make([]byte, 32)}); !errors.Is(err, ErrJoinExpired) {
		t.Fatalf("answer without a challenge: %v", err)
	}
	ch9, err := l.JoinChallenge(ctx, "n9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AdmitNode(ctx, JoinAnswer{NodeID: "n8", ChallengeID: ch9.ID, ClusterAddr: "127.0.0.1:1", Answer: make([]byte, 32)}); !errors.Is(err, ErrJoinExpired) {
		t.Fatalf("answer quoting another node's challenge: %v", err)
	}
	if _, err := l.AdmitNode(ctx, JoinAnswer{NodeID: "n9", ChallengeID: ch9.ID, ClusterAddr: "127.0.0.1:1", Answer: make([]byte, 32)}); !errors.Is(err, ErrJoinDenied) {
		t.Fatalf("wrong answer: %v", err)
	}
	if _, err := l.AdmitNode(ctx, JoinAnswer{NodeID: "n9", ChallengeID: ch9.ID, ClusterAddr: "127.0.0.1:1", Answer: make([]byte, 32)}); !errors.Is(err, ErrJoinExpired) {
		t.Fatalf("second answer to a used challenge: %v", err)
	}
	// A node holding other shares cannot answer.
	other, err := New(clusterNodeConfig(t, "n2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Shutdown() })
	ch, _ := l.JoinChallenge(ctx, "n2")
	if err := other.PrepareJoin(ch, l.AdmitNode); err != nil {
		t.Fatal(err)
	}
	foreign, _ := New(clusterNodeConfig(t, "x"))
	t.Cleanup(func() { foreign.Shutdown() })
	fres, err := foreign.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Unseal(ctx, fres.Keys[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Unseal(ctx, fres.Keys[1]); !errors.Is(err, ErrInvalidUnsealKey) {
		t.Fatalf("joining with another cluster's keys: %v", err)
	}
	if peers, _ := l.Peers(); len(peers) != 1 {
		t.Fatalf("a refused join changed the configuration: %+v", peers)
	}
	// A node with state cannot join.
	ch, _ = l.JoinChallenge(ctx, "x")
	if err := foreign.PrepareJoin(ch, l.AdmitNode); !errors.Is(err, ErrAlreadyMember) {
		t.Fatalf("PrepareJoin on a node with state: %v", err)
	}
	if err := l.RemovePeer(ctx, "n1"); !errors.Is(err, ErrLastVoter) {
		t.Fatalf("removing the last voter: %v", err)
	}
	if err := l.RemovePeer(ctx, "nope"); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("removing an unknown peer: %v", err)
	}
}

// A dead leader is replaced, acknowledged writes survive, a removed node
// rejoins with an empty data dir, and autopilot removes a dead voter only
// above the minimum quorum.
func TestClusterFailoverRemoveRejoin(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if _, err := tc.nodes[i%3].Commit(ctx, &Txn{Writes: []Write{{Key: fmt.Sprintf("k/%d", i), Value: []byte("v")}}}); err != nil {
			t.Fatal(err)
		}
	}
	old := tc.leader()
	old.Shutdown()
	var alive []*Node
	for _, n := range tc.nodes {
		if n != old {
			alive = append(alive, n)
		}
	}
	tc.nodes = alive
	l := tc.leader()
	if _, err := alive[0].Commit(ctx, &Txn{Writes: []Write{{Key: "after-failover", Value: []byte("v")}}}); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
	for _, n := range alive {
		for i := 0; i < 10; i++ {
			if v, _, err := n.Read(fmt.Sprintf("k/%d", i)); err != nil || string(v) != "v" {
				t.Fatalf("%s lost k/%d: %q %v", n.cfg.NodeID, i, v, err)
			}
		}
	}
	// The dead node is reported failed by gossip.
	testwait.Within(t, 20*time.Second, "the old leader to show as failed", func() bool {
		for _, m := range l.Members() {
			if m.NodeID == old.cfg.NodeID {
				return m.Status == "failed" || m.Status == "left"
			}
		}
		return false
	})

	// Remove it; it comes back with a wiped data dir under the same ID.
	if err := alive[1].RemovePeer(ctx, old.cfg.NodeID); err != nil {
		t.Fatalf("remove-peer through a node: %v", err)
	}
	tc.waitVoters(2)
	cfg := clusterNodeConfig(t, old.cfg.NodeID)
	back := tc.join(ctx, cfg)
	tc.waitVoters(3)
	if v, _, err := back.Read("after-failover"); err != nil || string(v) != "v" {
		t.Fatalf("rejoined node did not catch up: %q %v", v, err)
	}
}

// Autopilot removes a voter dead past the threshold, but never below
// min_quorum. The rounds run with a given clock, so the threshold passes
// without waiting for it.
func TestAutopilotDeadServerCleanup(t *testing.T) {
	tc := newTestCluster(t, 3)
	l := tc.leader()
	var victim *Node
	for _, n := range tc.nodes {
		if n != l {
			victim = n
			break
		}
	}
	victim.Shutdown()
	testwait.Within(t, 20*time.Second, "the victim to show as failed", func() bool {
		m, ok := l.gossipNode().Member(victim.cfg.NodeID)
		return ok && (m.State.String() == "failed" || m.State.String() == "left")
	})

	cfg := AutopilotConfig{CleanupDeadServers: true, DeadServerLastContactThreshold: time.Hour, MinQuorum: 3}
	t0 := time.Now()
	l.autopilotStep(t0, cfg)
	l.autopilotStep(t0.Add(2*time.Hour), cfg)
	voters := func() int {
		f := l.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		v := 0
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				v++
			}
		}
		return v
	}
	if v := voters(); v != 3 {
		t.Fatalf("autopilot went below min_quorum 3: %d voters", v)
	}
	cfg.MinQuorum = 2
	l.autopilotStep(t0.Add(30*time.Minute), cfg) // not past the threshold yet
	if v := voters(); v != 3 {
		t.Fatalf("autopilot removed a server before the threshold: %d voters", v)
	}
	l.autopilotStep(t0.Add(2*time.Hour), cfg)
	if v := voters(); v != 2 {
		t.Fatalf("dead server not removed above min_quorum: %d voters", v)
	}
	found := false
	if err := l.AuditEvents(1, func(e *audit.Event) error {
		if e.Operation == "autopilot/remove-dead-server" && e.Details["server_id"] == victim.cfg.NodeID {
			found = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatal("the removal left no audit event")
	}
}

// A snapshot of one cluster restored onto another: every node of the
// target seals (the root of trust changed), unseals with the source's
// shares, serves the source's data, and a node that joins afterwards
// still reaches the nodes whose certificates came from the target's CA.
func TestClusterRestoreFromAnotherClusterThenJoin(t *testing.T) {
	ctx := context.Background()
	a := newTestCluster(t, 1)
	if _, err := a.nodes[0].Commit(ctx, &Txn{Writes: []Write{{Key: "from-a", Value: []byte("a")}}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "snap")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.nodes[0].SaveSnapshot(f); err != nil {
		t.Fatal(err)
	}
	b := newTestCluster(t, 2)
	if _, err := b.leader().RestoreSnapshot(ctx, f); err != nil {
		t.Fatal(err)
	}
	for _, n := range b.nodes {
		testwait.Within(t, 20*time.Second, n.cfg.NodeID+" to seal after the restore", n.Sealed)
	}
	b.shares = a.shares
	for _, n := range b.nodes {
		for _, k := range a.shares[:2] {
			if _, err := n.Unseal(ctx, k); err != nil {
				t.Fatalf("%s: unseal with the source's shares: %v", n.cfg.NodeID, err)
			}
		}
		if v, _, err := n.Read("from-a"); err != nil || string(v) != "a" {
			t.Fatalf("%s after restore: %q %v", n.cfg.NodeID, v, err)
		}
	}
	joined := b.join(ctx, clusterNodeConfig(t, "n3"))
	b.waitVoters(3)
	if _, err := joined.Commit(ctx, &Txn{Writes: []Write{{Key: "after-restore", Value: []byte("b")}}}); err != nil {
		t.Fatalf("write through the node that joined after the restore: %v", err)
	}
	for _, n := range b.nodes {
		if err := n.waitApplied(ctx, joined.fsm.AppliedIndex()); err != nil {
			t.Fatal(err)
		}
		if v, _, err := n.Read("after-restore"); err != nil || string(v) != "b" {
			t.Fatalf("%s: %q %v", n.cfg.NodeID, v, err)
		}
	}
}

// Operators may bring their own certificates for the cluster port: nodes
// configured with them form a cluster, and the link presents the
// operator's certificate, not the one the cluster CA issued at join.
func TestClusterWithOperatorCertificates(t *testing.T) {
	ctx := context.Background()
	opCA, err := link.NewClusterCA("operator", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfgFor := func(id string) Config {
		c := clusterNodeConfig(t, id)
		tlsID, err := opCA.IssueIdentity(id, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c.TLS = &tlsID
		return c
	}
	first, err := New(cfgFor("n1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Shutdown() })
	res, err := first.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Unseal(ctx, res.Keys[0]); err != nil {
		t.Fatal(err)
	}
	// join unseals with shares[1:]; the threshold is 1.
	tc := &testCluster{t: t, nodes: []*Node{first}, shares: [][]byte{nil, res.Keys[0]}}
	second := tc.join(ctx, cfgFor("n2"))
	tc.waitVoters(2)
	if _, err := second.Commit(ctx, &Txn{Writes: []Write{{Key: "k", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	// The port speaks the operator's CA: a client holding the operator's
	// certificate is accepted.
	probe := opCA.Pool()
	clientID, _ := opCA.IssueIdentity("probe", time.Now(), time.Hour)
	cert, _, err := clientID.TLS()
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	l := link.NewClusterLink(ln, nil, nil)
	defer l.Close()
	l.SetCredentials(cert, probe)
	c, err := l.Dial(link.ProtoRaft, first.ClusterAddr(), 5*time.Second)
	if err != nil {
		t.Fatalf("a client of the operator's CA was refused: %v", err)
	}
	c.Close()
}

// A removed node's certificate stays valid, but the cluster port refuses
// it: it can neither forward commands nor take part in Raft.
func TestRemovedNodeIsRefused(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx := context.Background()
	l := tc.leader()
	var gone *Node
	for _, n := range tc.nodes {
		if n != l {
			gone = n
			break
		}
	}
	if err := l.RemovePeer(ctx, gone.cfg.NodeID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Commit(ctx, &Txn{Writes: []Write{{Key: "transit/key/precious", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	cmd, _ := (&fsm.Command{Ops: []fsm.Op{{Kind: fsm.OpDeletePrefix, Key: "transit/"}}}).Encode()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := gone.fwd.Call(cctx, l.ClusterAddr(), append([]byte{fwdApply}, cmd...)); err == nil {
		t.Fatal("a removed node forwarded a command to the leader")
	}
	if v, _, err := l.Read("transit/key/precious"); err != nil || string(v) != "v" {
		t.Fatalf("a removed node's delete reached the state: %q %v", v, err)
	}
}

// A node that saved its identity (admitted, or initialized) counts as a
// member after a restart even before any Raft entry reached it, so it
// never holds audit events in memory instead of committing them.
func TestIdentityMakesMember(t *testing.T) {
	tc := newTestCluster(t, 1)
	n := tc.nodes[0]
	id := n.ident.Load()
	cfg := clusterNodeConfig(t, "fresh")
	if err := saveIdentity(cfg.DataDir, id); err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown()
	if !m.IsMember() {
		t.Fatal("a node with an identity but no Raft state is not a member")
	}
	if held, _ := m.audit.hold([]byte("{}")); held {
		t.Fatal("a member held an audit event instead of committing it")
	}
}

// Verifying the audit log while events keep arriving reports an intact
// chain: it checks up to the head it started with (found by the e2e
// test, where the verify request's own event raced the scan).
func TestVerifyAuditWhileEventsArrive(t *testing.T) {
	tc := newTestCluster(t, 1)
	n := tc.nodes[0]
	ctx := context.Background()
	// A bounded number of events (each verify reads the whole log), and
	// verifies for as long as they keep arriving.
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 150; j++ {
				n.AuditLog().Record(ctx, &audit.Event{Time: time.Now().UTC(), Node: "n1", Operation: "test", Outcome: audit.Allowed, Status: 200})
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	for i := 0; ; i++ {
		v, err := n.VerifyAudit()
		if err != nil {
			t.Fatal(err)
		}
		if v.Problem != nil {
			t.Fatalf("verify %d while events arrive: %+v", i, v.Problem)
		}
		select {
		case <-done:
			t.Logf("%d verifies while 1200 events arrived", i+1)
			return
		default:
		}
	}
}
