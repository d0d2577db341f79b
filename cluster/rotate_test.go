package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/seal"
)

// storedTerm is the keyring term of the barrier value stored at key.
func storedTerm(t *testing.T, n *Node, key string) uint32 {
	t.Helper()
	ct, _, err := n.fsm.Get(key)
	if err != nil || ct == nil {
		t.Fatalf("%s: %s: %x %v", n.cfg.NodeID, key, ct, err)
	}
	term, err := seal.CiphertextTerm(ct)
	if err != nil {
		t.Fatalf("%s: %s is not a barrier value: %v", n.cfg.NodeID, key, err)
	}
	return term
}

// staleValues lists the barrier values of n below term.
func staleValues(t *testing.T, n *Node, term uint32) []string {
	t.Helper()
	keys, err := n.staleRecords(term, nil)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func waitRotationDone(t *testing.T, n *Node, term uint32) RotationStatus {
	t.Helper()
	var st RotationStatus
	testwait.Within(t, 30*time.Second, fmt.Sprintf("%s to report the term %d re-encryption done", n.cfg.NodeID, term), func() bool {
		var err error
		st, err = n.RotationStatus()
		return err == nil && st.Term == term && !st.Running
	})

	return st
}

// A rotation through a follower reaches every node: each one's barrier
// encrypts with the new term, old values stay readable, the leader
// re-encrypts every old value while a writer keeps changing some of them
// (the writer's values win), the audit log has both events, and a node
// restarted afterwards unseals with the same shares and reads everything.
func TestRotateKeyringAcrossCluster(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const records = 200
	want := map[string]string{}
	for i := 0; i < records; i++ {
		key, val := fmt.Sprintf("rot/%03d", i), fmt.Sprintf("v%d", i)
		if _, err := tc.nodes[i%3].Commit(ctx, &Txn{Writes: []Write{{Key: key, Value: []byte(val)}}}); err != nil {
			t.Fatal(err)
		}
		want[key] = val
	}
	for _, n := range tc.nodes {
		if st, err := n.RotationStatus(); err != nil || st.Term != 1 || st.Running {
			t.Fatalf("%s: status before any rotation: %+v %v", n.cfg.NodeID, st, err)
		}
	}
	leader := tc.leader()
	var follower *Node
	for _, n := range tc.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	// Every node stores the values with term 1.
	for _, n := range tc.nodes {
		if err := n.waitApplied(ctx, leader.fsm.AppliedIndex()); err != nil {
			t.Fatal(err)
		}
		if got := storedTerm(t, n, "rot/000"); got != 1 {
			t.Fatalf("%s: value before rotation has term %d", n.cfg.NodeID, got)
		}
	}

	// Writers keep changing twelve of the records, each through its own
	// node, from before the rotation until the re-encryption is over.
	var (
		wmu     sync.Mutex
		written = map[string]string{}
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		werr    error
		during  int // writes made while the job ran
	)
	for w, n := range tc.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key, val := fmt.Sprintf("rot/%03d", w+3*(i%4)), fmt.Sprintf("w%d-%d", w, i)
				st, _ := n.RotationStatus()
				// An election on a loaded machine may leave a write's
				// outcome unknown: write the same value again until it
				// commits, so the last value written is known.
				for {
					_, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: key, Value: []byte(val)}}})
					if err == nil {
						break
					}
					if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) || ctx.Err() != nil {
						wmu.Lock()
						werr = fmt.Errorf("writer via %s: %w", n.cfg.NodeID, err)
						wmu.Unlock()
						return
					}
				}
				wmu.Lock()
				written[key] = val
				if st.Running {
					during++
				}
				wmu.Unlock()
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	ev := &audit.Event{Time: time.Now().UTC(), Node: follower.cfg.NodeID, Operation: "sys/rotate", RequestID: "rotate-1"}
	term, err := follower.RotateKeyring(audit.WithEvent(ctx, ev))
	if err != nil {
		t.Fatalf("rotate through follower %s: %v", follower.cfg.NodeID, err)
	}
	if term != 2 || ev.Committed() == 0 {
		t.Fatalf("rotation: term %d, event committed at %d", term, ev.Committed())
	}
	// The node that rotated uses the new term as soon as it answers; the
	// others once they applied the entry.
	if ks, err := follower.KeyStatus(); err != nil || ks.Term != 2 || time.Since(ks.InstallTime) > time.Minute {
		t.Fatalf("key status on the rotating node: %+v %v", ks, err)
	}
	for _, n := range tc.nodes {
		testwait.Within(t, 20*time.Second, n.cfg.NodeID+" to load term 2", func() bool { return n.barrier.ActiveTerm() == 2 })
	}
	for _, n := range tc.nodes {
		key := "new/" + n.cfg.NodeID
		if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: key, Value: []byte("fresh")}}}); err != nil {
			t.Fatal(err)
		}
		if got := storedTerm(t, n, key); got != 2 {
			t.Fatalf("a write through %s after the rotation has term %d", n.cfg.NodeID, got)
		}
		// Old and new values decrypt everywhere, job or no job.
		for i := 12; i < records; i += 7 {
			key := fmt.Sprintf("rot/%03d", i)
			if v, _, err := n.Read(key); err != nil || string(v) != want[key] {
				t.Fatalf("%s: %s during the re-encryption: %q %v", n.cfg.NodeID, key, v, err)
			}
		}
	}

	st := waitRotationDone(t, follower, 2)
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	if st.Error != "" || st.Done != st.Total || st.Total < records-12 || st.Finished.IsZero() {
		t.Fatalf("re-encryption status: %+v", st)
	}
	if during == 0 {
		t.Fatal("no write happened while the job ran")
	}
	t.Logf("re-encrypted %d values; the writers made %d writes while it ran", st.Total, during)
	for k, v := range written {
		want[k] = v
	}
	for _, n := range tc.nodes {
		if err := n.waitApplied(ctx, leader.fsm.AppliedIndex()); err != nil {
			t.Fatal(err)
		}
		if got, err := n.RotationStatus(); err != nil || got.Term != st.Term || got.Done != st.Done || got.Running {
			t.Fatalf("%s reports %+v (%v), the leader %+v", n.cfg.NodeID, got, err, st)
		}
		if stale := staleValues(t, n, 2); len(stale) != 0 {
			t.Fatalf("%s still holds %d values below term 2: %v", n.cfg.NodeID, len(stale), stale)
		}
		for key, val := range want {
			if v, _, err := n.Read(key); err != nil || string(v) != val {
				t.Fatalf("%s: %s after the re-encryption: %q %v, want %q", n.cfg.NodeID, key, v, err, val)
			}
		}
	}
	// Secrets made at init (tokens, audit keys, the cluster CA) moved too.
	if got := storedTerm(t, leader, fsm.RecordAuditHMACKey); got != 2 {
		t.Fatalf("audit HMAC key has term %d", got)
	}

	// Both the rotation and the end of its job are in the audit log.
	var rotated, rewrapped bool
	if err := leader.AuditEvents(1, func(e *audit.Event) error {
		switch {
		case e.Operation == "sys/rotate" && e.RequestID == "rotate-1" && e.Details["term"] == "2" && e.StateChange:
			rotated = true
		case e.Operation == "sys/rotate/rewrap" && e.Details["term"] == "2" && e.Outcome == audit.Allowed:
			rewrapped = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !rotated || !rewrapped {
		t.Fatalf("audit events: rotation %v, re-encryption %v", rotated, rewrapped)
	}

	// A second rotation through the leader: term 3, and its job runs too.
	if term, err := leader.RotateKeyring(ctx); err != nil || term != 3 {
		t.Fatalf("second rotation: %d %v", term, err)
	}
	st = waitRotationDone(t, leader, 3)
	if st.Error != "" || st.Done != st.Total {
		t.Fatalf("second re-encryption: %+v", st)
	}
	if stale := staleValues(t, leader, 3); len(stale) != 0 {
		t.Fatalf("below term 3 after the second job: %v", stale)
	}

	// A follower restarted now unseals with the same shares and reads
	// everything with the keyring it finds stored.
	cfg := follower.Config()
	follower.Shutdown()
	back, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Shutdown() })
	for _, k := range tc.shares[1:] {
		testwait.Within(t, 20*time.Second, "the restarted node to take a share", func() bool {
			_, err := back.Unseal(ctx, k)
			return !errors.Is(err, ErrNotReady)
		})

	}
	if back.Sealed() {
		t.Fatal("the restarted node is still sealed")
	}
	if ks, err := back.KeyStatus(); err != nil || ks.Term != 3 {
		t.Fatalf("restarted node's key status: %+v %v", ks, err)
	}
	for key, val := range want {
		if v, _, err := back.Read(key); err != nil || string(v) != val {
			t.Fatalf("restarted node: %s: %q %v", key, v, err)
		}
	}
}

// Rotation needs an unsealed node; a follower left unsealed by a restore
// of an older snapshot (same root of trust) goes back to that snapshot's
// keyring, and everything in the snapshot reads again.
func TestRotateSealedAndRestoreOlderKeyring(t *testing.T) {
	tc := newTestCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := tc.leader()
	var follower *Node
	for _, n := range tc.nodes {
		if n != leader {
			follower = n
		}
	}
	if _, err := leader.Commit(ctx, &Txn{Writes: []Write{{Key: "before", Value: []byte("b")}}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "snap")
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.SaveSnapshot(f); err != nil {
		t.Fatal(err)
	}
	if term, err := follower.RotateKeyring(ctx); err != nil || term != 2 {
		t.Fatalf("rotate: %d %v", term, err)
	}
	waitRotationDone(t, leader, 2)
	testwait.Within(t, 20*time.Second, "the follower to load term 2", func() bool { return follower.barrier.ActiveTerm() == 2 })

	if _, err := leader.RestoreSnapshot(ctx, f); err != nil {
		t.Fatal(err)
	}
	// The leader seals after any restore; the follower keeps its root key
	// (the snapshot has the same one) and loads the restored keyring.
	testwait.Within(t, 20*time.Second, "the follower to load the restored keyring", func() bool {
		return !follower.Sealed() && follower.barrier.ActiveTerm() == 1
	})

	if v, _, err := follower.Read("before"); err != nil || string(v) != "b" {
		t.Fatalf("follower after the restore: %q %v", v, err)
	}
	if !leader.Sealed() {
		t.Fatal("the leader did not seal after the restore")
	}
	if _, err := leader.RotateKeyring(ctx); !errors.Is(err, ErrSealed) {
		t.Fatalf("rotate on a sealed node: %v", err)
	}
	if _, err := leader.KeyStatus(); !errors.Is(err, ErrSealed) {
		t.Fatalf("key status on a sealed node: %v", err)
	}
	for _, k := range tc.shares[:2] {
		if _, err := leader.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if ks, err := leader.KeyStatus(); err != nil || ks.Term != 1 {
		t.Fatalf("leader after the restore: %+v %v", ks, err)
	}
	// Rotating again from the restored keyring gives term 2 anew, and a
	// write afterwards reads on both nodes.
	if term, err := follower.RotateKeyring(ctx); err != nil || term != 2 {
		t.Fatalf("rotate after the restore: %d %v", term, err)
	}
	waitRotationDone(t, leader, 2)
	if _, err := leader.Commit(ctx, &Txn{Writes: []Write{{Key: "after", Value: []byte("a")}}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		if err := n.waitApplied(ctx, leader.fsm.AppliedIndex()); err != nil {
			t.Fatal(err)
		}
		for key, val := range map[string]string{"before": "b", "after": "a"} {
			if v, _, err := n.Read(key); err != nil || !bytes.Equal(v, []byte(val)) {
				t.Fatalf("%s: %s: %q %v", n.cfg.NodeID, key, v, err)
			}
		}
	}
}

// Only barrier values are re-encrypted: the seal's own records and the
// state machine's are left alone.
func TestIsBarrierValue(t *testing.T) {
	for key, want := range map[string]bool{
		fsm.RecordSealConfig: false, fsm.RecordRootKey: false, fsm.RecordRootKey + "-pkcs11": false, fsm.RecordKeyring: false,
		fsm.RecordKeyringRewrap: false, "core/audit-public-key": false, "\x00applied": false, "": false,
		fsm.RecordAuditHMACKey: true, fsm.RecordAuditSigningKey: true, fsm.RecordRecoveryKey: true, fsm.RecordClusterCAKey: true,
		"auth/token/ab": true, "transit/key/k": true, "sys/audit-device/f": true,
	} {
		if got := isBarrierValue(key); got != want {
			t.Errorf("isBarrierValue(%q) = %v, want %v", key, got, want)
		}
	}
}

// The job loses to a concurrent write (the record is read again and the
// writer's value stays), and stops when a newer rotation supersedes it;
// the newer job then re-encrypts everything. The job runs here in the
// test's goroutine, with the node's own loop kept from starting one.
func TestRewrapConflictsAndSupersede(t *testing.T) {
	tc := newTestCluster(t, 1)
	n := tc.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 100; i++ {
		if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: fmt.Sprintf("c/%03d", i), Value: []byte("old")}}}); err != nil {
			t.Fatal(err)
		}
	}
	n.rewrapActive.Store(true) // the loop leaves the job to the test
	if term, err := n.RotateKeyring(ctx); err != nil || term != 2 {
		t.Fatalf("rotate: %d %v", term, err)
	}
	if st, err := n.RotationStatus(); err != nil || !st.Running || st.Term != 2 || st.Done != 0 {
		t.Fatalf("status after the rotation: %+v %v", st, err)
	}
	batches, retried := 0, false
	n.rewrapHook = func(try int) {
		if try > 1 {
			retried = true
			return
		}
		batches++
		switch batches {
		case 1: // the first batch has c/000 at term 1: a writer changes it
			if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: "c/000", Value: []byte("writer")}}}); err != nil {
				t.Error(err)
			}
		case 2: // before the second one commits, the keyring rotates again
			if term, err := n.RotateKeyring(ctx); err != nil || term != 3 {
				t.Errorf("rotation during the job: %d %v", term, err)
			}
		}
	}
	if err := n.rewrap(ctx); !errors.Is(err, errRewrapStopped) {
		t.Fatalf("superseded job: %v", err)
	}
	if !retried {
		t.Fatal("the batch that lost to the writer was not read again")
	}
	if v, _, err := n.Read("c/000"); err != nil || string(v) != "writer" {
		t.Fatalf("the writer's value: %q %v", v, err)
	}
	st, err := n.RotationStatus()
	if err != nil || !st.Running || st.Term != 3 {
		t.Fatalf("status after the newer rotation: %+v %v", st, err)
	}
	n.rewrapHook = nil
	if err := n.rewrap(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ = n.RotationStatus()
	if st.Running || st.Term != 3 || st.Done != st.Total || st.Total < 100 || st.Error != "" {
		t.Fatalf("status after the newer job: %+v", st)
	}
	if stale := staleValues(t, n, 3); len(stale) != 0 {
		t.Fatalf("values below term 3: %v", stale)
	}
	for i := 1; i < 100; i++ {
		if v, _, err := n.Read(fmt.Sprintf("c/%03d", i)); err != nil || string(v) != "old" {
			t.Fatalf("c/%03d: %q %v", i, v, err)
		}
	}
}
