package cluster

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/bolt"
)

func TestAuditLogGroupCommitEveryEventOnce(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, t.TempDir())
	if _, err := n.DevInit(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	const clients, each = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e := &audit.Event{Time: time.Now().UTC(), RequestID: fmt.Sprintf("r-%d-%d", c, i), Operation: "transit/encrypt", Outcome: audit.Allowed}
				if err := n.AuditLog().Record(ctx, e); err != nil {
					errs <- err
				}
			}
		}()
	}
	// A state change carries its request's event in the same entry.
	ev := &audit.Event{RequestID: "state-change", Operation: "transit/keys"}
	rev, err := n.Commit(audit.WithEvent(ctx, ev), &Txn{Expect: []fsm.Cond{{Key: "transit/key/k"}}, Writes: []Write{{Key: "transit/key/k", Value: []byte("v")}}})
	if err != nil || rev == 0 {
		t.Fatal(err)
	}
	if ev.Committed() == 0 {
		t.Fatal("state change did not commit its event")
	}
	if err := n.AuditLog().Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	seen := map[string]int{}
	v := audit.NewVerifier(0, audit.GenesisHash)
	if err := n.AuditEvents(1, func(e *audit.Event) error {
		seen[e.RequestID]++
		return v.Next(e)
	}); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < clients; c++ {
		for i := 0; i < each; i++ {
			if id := fmt.Sprintf("r-%d-%d", c, i); seen[id] != 1 {
				t.Fatalf("event %s recorded %d times", id, seen[id])
			}
		}
	}
	if seen["state-change"] != 1 {
		t.Fatalf("state-change event recorded %d times", seen["state-change"])
	}
	if last, _ := v.Last(); last != n.AuditHead().Seq || last < clients*each+1 {
		t.Fatalf("chain ends at %d, head %d", last, n.AuditHead().Seq)
	}
	if h, ok := n.AuditHMAC([]byte("secret")); !ok || len(h) < 20 {
		t.Fatal("no audit HMAC while unsealed")
	}
	n.Seal()
	if _, ok := n.AuditHMAC([]byte("secret")); ok {
		t.Fatal("audit HMAC available while sealed")
	}
	// A sealed node still records (unseal attempts must leave a trace).
	if err := n.AuditLog().Record(ctx, &audit.Event{RequestID: "sealed", Operation: "sys/unseal", Outcome: audit.Failed}); err != nil {
		t.Fatalf("record while sealed: %v", err)
	}
}

func BenchmarkAuditRecord(b *testing.B) {
	ctx := context.Background()
	c := DefaultConfig()
	c.NodeID, c.DataDir, c.BindAddr = "b", b.TempDir(), "127.0.0.1:0"
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
	n, err := New(c)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Shutdown()
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for !n.IsLeader() {
		select {
		case <-wait.Done():
			b.Fatal("no leader")
		case <-time.After(5 * time.Millisecond):
		}
	}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := n.AuditLog().Record(ctx, &audit.Event{Operation: "transit/encrypt", Outcome: audit.Allowed}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestAuditCheckpointsAreSignedAndChecked(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, t.TempDir())
	if _, err := n.DevInit(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		n.AuditLog().Record(ctx, &audit.Event{Operation: "x", Outcome: audit.Allowed})
	}
	cp, err := n.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Seq != n.AuditHeadSeq() || !cp.Verify(n.AuditPublicKey()) {
		t.Fatalf("checkpoint %+v does not cover and verify the head", cp)
	}
	if _, err := n.Checkpoint(ctx); !errors.Is(err, ErrNothingToCheckpoint) {
		t.Fatalf("second checkpoint of the same head: %v", err)
	}
	var stored []*audit.Checkpoint
	n.AuditCheckpoints(0, func(c *audit.Checkpoint) error { stored = append(stored, c); return nil })
	if len(stored) != 1 || stored[0].Hash != cp.Hash {
		t.Fatalf("stored checkpoints: %+v", stored)
	}

	// A checkpoint signed by another key, or naming a wrong hash, is refused.
	_, otherKey, _ := ed25519.GenerateKey(nil)
	n.AuditLog().Record(ctx, &audit.Event{Operation: "y", Outcome: audit.Allowed})
	head := n.AuditHead()
	forged := &audit.Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: time.Now()}
	forged.Sign(otherKey)
	b, _ := json.Marshal(forged)
	if _, err := n.Apply(ctx, &fsm.Command{Checkpoint: b}); !errors.Is(err, fsm.ErrBadCheckpoint) {
		t.Fatalf("forged checkpoint: %v", err)
	}
	n.mu.Lock()
	signer := n.auditSigner
	n.mu.Unlock()
	wrong := &audit.Checkpoint{Seq: head.Seq, Hash: strings.Repeat("ab", 32), Time: time.Now()}
	wrong.Sign(signer)
	b, _ = json.Marshal(wrong)
	if _, err := n.Apply(ctx, &fsm.Command{Checkpoint: b}); !errors.Is(err, fsm.ErrBadCheckpoint) {
		t.Fatalf("checkpoint with a wrong hash: %v", err)
	}
}

func TestAuditRecordAfterShutdownNeverHangs(t *testing.T) {
	n := startNode(t, t.TempDir())
	n.Shutdown()
	ctx := context.Background() // no deadline: a hang would fail by the test timeout
	for i := 0; i < 200; i++ {
		if err := n.AuditLog().Record(ctx, &audit.Event{Operation: "x", Outcome: audit.Allowed}); !errors.Is(err, ErrClosed) {
			t.Fatalf("record %d after shutdown: %v", i, err)
		}
	}
}

func TestAuditRecordShrinksHugeEvents(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, t.TempDir())
	hmacs := map[string]string{"client_token": "hmac-sha256:aa"}
	for i := 0; i < 3000; i++ {
		hmacs[fmt.Sprintf("batch_input[%d].plaintext", i)] = "hmac-sha256:" + strings.Repeat("ab", 32)
	}
	ev := &audit.Event{Operation: "transit/encrypt", Outcome: audit.Allowed, Path: "/v1/" + strings.Repeat("p", 100000), HMACs: hmacs}
	if err := n.AuditLog().Record(ctx, ev); err != nil {
		t.Fatalf("huge event not recorded: %v", err)
	}
	var got *audit.Event
	n.AuditEvents(1, func(e *audit.Event) error { got = e; return nil })
	if got == nil || len(got.Path) > audit.MaxPathInEvent+8 || got.HMACs["client_token"] != "hmac-sha256:aa" ||
		!strings.HasPrefix(got.HMACs["batch_input[*].plaintext"], "sha256-of-3000-hmacs:") {
		t.Fatalf("shrunk event: path %d bytes, hmacs %v", len(got.Path), got.HMACs)
	}
}

// An attacker with the data directory rewrites an event that a signed
// checkpoint covers and recomputes the chain and head after it: the chain
// alone checks out, the checkpoint does not.
func TestVerifyAuditCatchesRechainedEditUnderCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n := startNode(t, dir)
	if _, err := n.DevInit(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		n.AuditLog().Record(ctx, &audit.Event{Operation: "transit/encrypt", Outcome: audit.Allowed, Status: 200})
	}
	if _, err := n.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	n.AuditLog().Record(ctx, &audit.Event{Operation: "after", Outcome: audit.Allowed})
	if r, err := n.VerifyAudit(); err != nil || r.Problem != nil || r.Events != 6 || r.Checkpoints != 1 {
		t.Fatalf("intact log: %+v %v", r, err)
	}
	n.Shutdown()

	st, err := bolt.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	var evs []*audit.Event
	st.Scan([]byte("\x00audit/e/"), func(_, v []byte) error {
		e, err := audit.Decode(v)
		evs = append(evs, e)
		return err
	})
	evs[1].Outcome = audit.Denied // seq 2, covered by the checkpoint at 5
	prev := audit.GenesisHash
	var batch []plugins.Mutation
	for _, e := range evs {
		e.PrevHash, e.Hash = prev, ""
		e.Hash, _ = audit.ChainHash(prev, e)
		prev = e.Hash
		b, _ := json.Marshal(e)
		batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: []byte(fmt.Sprintf("\x00audit/e/%020d", e.Seq)), Value: b})
	}
	hb, _ := json.Marshal(fsm.AuditHead{Seq: evs[len(evs)-1].Seq, Hash: prev})
	batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: []byte("\x00audit/head"), Value: hb})
	if err := st.Write(batch); err != nil {
		t.Fatal(err)
	}
	st.Close()

	n2 := startNode(t, dir)
	r, err := n2.VerifyAudit()
	if err != nil || r.Problem == nil || r.Problem.Seq != 5 || !strings.Contains(r.Problem.Reason, "signed checkpoint") {
		t.Fatalf("rechained edit under a checkpoint: %+v %v", r, err)
	}
}
