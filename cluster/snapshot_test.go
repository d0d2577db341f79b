package cluster

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyraft/keyraft/fsm"
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
	if _, err := b.LookupToken("root-a"); err != nil {
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
