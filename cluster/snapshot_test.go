package cluster

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/seal"
)

// A snapshot saved on one cluster restores onto a fresh one, which then
// unseals with the first cluster's shares and serves its records; writes
// after the restore apply (no index confusion with the old cluster's log).
func TestSnapshotSaveRestoreOntoAnotherCluster(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, t.TempDir())
	resA, err := a.DevInit(ctx, "root-a")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ { // push A's indexes well past B's
		a.Commit(ctx, &Txn{Writes: []Write{{Key: "transit/key/filler", Value: []byte{byte(i)}}}})
	}
	if _, err := a.Commit(ctx, &Txn{Writes: []Write{{Key: "transit/key/app", Value: []byte("from A")}}}); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if err := a.SaveSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if id, err := SnapshotClusterID(bytes.NewReader(snap.Bytes())); err != nil || id != a.SealStatus().ClusterID {
		t.Fatalf("snapshot cluster id %q %v", id, err)
	}

	b := startNode(t, t.TempDir())
	if _, err := b.DevInit(ctx, "root-b"); err != nil {
		t.Fatal(err)
	}
	bad, _ := os.CreateTemp(t.TempDir(), "bad")
	bad.WriteString("not a snapshot")
	if _, err := b.RestoreSnapshot(ctx, bad); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("restore of garbage: %v", err)
	}
	f, _ := os.Create(filepath.Join(t.TempDir(), "snap"))
	f.Write(snap.Bytes())
	if _, err := b.RestoreSnapshot(ctx, f); err != nil {
		t.Fatal(err)
	}
	if !b.Sealed() {
		t.Fatal("node not sealed after a restore")
	}
	if _, err := b.Unseal(ctx, resA.Keys[0]); err != nil {
		t.Fatalf("unseal with A's share: %v", err)
	}
	if v, _, err := b.Read("transit/key/app"); err != nil || string(v) != "from A" {
		t.Fatalf("restored record: %q %v", v, err)
	}
	if _, err := b.Access().LookupToken("root-a"); err != nil {
		t.Fatalf("A's root token on B: %v", err)
	}
	rev, err := b.Commit(ctx, &Txn{Expect: []fsm.Cond{{Key: "transit/key/new"}}, Writes: []Write{{Key: "transit/key/new", Value: []byte("after")}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, r, _ := b.Read("transit/key/new"); string(v) != "after" || r != rev {
		t.Fatalf("a write after the restore did not apply: %q@%d", v, r)
	}
	if r, err := b.VerifyAudit(); err != nil || r.Problem != nil {
		t.Fatalf("audit after restore: %+v %v", r, err)
	}
}

// After a restore replaces the audit log, a sink starts over with the new
// log in a new file instead of skipping it or splicing two histories.
func TestSinkStartsOverAfterRestore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := startNode(t, t.TempDir())
	res, err := n.DevInit(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		n.AuditLog().Record(ctx, &audit.Event{Operation: "before", Outcome: audit.Allowed})
	}
	var snap bytes.Buffer
	if err := n.SaveSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		n.AuditLog().Record(ctx, &audit.Event{Operation: "lost", Outcome: audit.Allowed})
	}
	dir := t.TempDir()
	fs, _ := audit.NewFileSink(filepath.Join(dir, "audit.log"), 0, 5)
	fol := &audit.Follower{Name: "f", Source: n, Sink: fs, Cursor: audit.FileCursor(filepath.Join(dir, "cursor")), Poll: 5 * time.Millisecond}
	done := make(chan struct{})
	go func() { fol.Run(ctx); close(done) }()
	testwait.For(t, "the sink to deliver the first log", func() bool { return fol.Status().Delivered.Seq == n.AuditHeadSeq() })
	before := fol.Status().Delivered.Seq

	f, _ := os.Create(filepath.Join(t.TempDir(), "snap"))
	f.Write(snap.Bytes())
	if _, err := n.RestoreSnapshot(ctx, f); err != nil {
		t.Fatal(err)
	}
	n.Unseal(ctx, res.Keys[0])
	n.AuditLog().Record(ctx, &audit.Event{Operation: "after", Outcome: audit.Allowed})
	if n.AuditHeadSeq() >= before {
		t.Fatalf("the restored log (%d) should be shorter than what was delivered (%d)", n.AuditHeadSeq(), before)
	}
	testwait.For(t, "the sink to start over", func() bool { return fol.Status().Delivered.Seq == n.AuditHeadSeq() })
	cancel()
	<-done
	fs.Close()
	newSeqs := seqsIn(t, filepath.Join(dir, "audit.log"))
	oldSeqs := seqsIn(t, filepath.Join(dir, "audit.log.1"))
	if uint64(len(oldSeqs)) != before || uint64(len(newSeqs)) != n.AuditHeadSeq() || newSeqs[0] != 1 {
		t.Fatalf("old file %d events (want %d), new file %d events from %d (want %d from 1)", len(oldSeqs), before, len(newSeqs), newSeqs[0], n.AuditHeadSeq())
	}
}

// The sealed checksums of a snapshot archive open with the keyring that
// sealed them, across a keyring rotation, and with no other; and their
// associated data can be no record's key.
func TestSnapshotSums(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, t.TempDir())
	if _, err := a.DevInit(ctx, "root-a"); err != nil {
		t.Fatal(err)
	}
	sums := []byte("0123  meta.json\n4567  state.bin\n")
	sealed, err := a.SealSnapshotSums(sums)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, sums) {
		t.Fatal("the sealed sums hold the sums in the clear")
	}
	if term, err := a.RotateKeyring(ctx); err != nil || term != 2 {
		t.Fatalf("rotate: %d %v", term, err)
	}
	waitRotationDone(t, a, 2)
	if got, err := a.OpenSnapshotSums(sealed); err != nil || !bytes.Equal(got, sums) {
		t.Fatalf("open after a rotation: %q %v", got, err)
	}
	altered := bytes.Clone(sealed)
	altered[len(altered)-1] ^= 1
	if _, err := a.OpenSnapshotSums(altered); !errors.Is(err, seal.ErrDecrypt) {
		t.Fatalf("altered sealed sums: %v", err)
	}

	b := startNode(t, t.TempDir())
	if _, err := b.DevInit(ctx, "root-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.OpenSnapshotSums(sealed); !errors.Is(err, seal.ErrDecrypt) {
		t.Fatalf("another cluster's sealed sums: %v", err)
	}
	// A record sealed under the same keyring does not pass for sums: the
	// associated data differs.
	if _, err := a.Commit(ctx, &Txn{Writes: []Write{{Key: "transit/key/k", Value: sums}}}); err != nil {
		t.Fatal(err)
	}
	ct, _, err := a.fsm.Get("transit/key/k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenSnapshotSums(ct); !errors.Is(err, seal.ErrDecrypt) {
		t.Fatalf("a record's ciphertext opened as snapshot sums: %v", err)
	}
	// No record may be stored under the associated data.
	if _, err := a.Commit(ctx, &Txn{Writes: []Write{{Key: snapshotSumsAAD, Value: sums}}}); err == nil {
		t.Fatal("a record under the snapshot sums' associated data was committed")
	}
	for _, r := range fsm.Records {
		if strings.HasPrefix(snapshotSumsAAD, r.Key) || strings.HasPrefix(snapshotSumsAAD, challengeAAD) {
			t.Fatalf("the snapshot sums' associated data starts like %q", r.Key)
		}
	}
	a.Seal()
	if _, err := a.SealSnapshotSums(sums); !errors.Is(err, ErrSealed) {
		t.Fatalf("seal while sealed: %v", err)
	}
	if _, err := a.OpenSnapshotSums(sealed); !errors.Is(err, ErrSealed) {
		t.Fatalf("open while sealed: %v", err)
	}
}
