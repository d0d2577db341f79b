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

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/fsm"
)

func testConfig(t testing.TB, dir string) Config {
	c := DefaultConfig()
	c.NodeID = "n1"
	c.DataDir = dir
	c.BindAddr = "127.0.0.1:0"
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 100 * time.Millisecond
	return c
}

func startNode(t *testing.T, dir string) *Node {
	t.Helper()
	n, err := New(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for !n.IsLeader() {
		select {
		case <-ctx.Done():
			t.Fatal("single node never became leader")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return n
}

func TestInitUnsealRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n := startNode(t, dir)
	if n.Initialized() || !n.Sealed() {
		t.Fatal("fresh node should be uninitialized and sealed")
	}
	if _, err := n.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 1}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("threshold 1 of 3: %v", err)
	}
	res, err := n.Init(ctx, InitRequest{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 5 || !strings.HasPrefix(res.RootToken, "kr.") {
		t.Fatalf("init result: %d keys, token %q", len(res.Keys), res.RootToken)
	}
	if _, err := n.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second init: %v", err)
	}
	if _, _, err := n.Read(access.TokenRecord(res.RootToken)); !errors.Is(err, ErrSealed) {
		t.Fatalf("read while sealed: %v", err)
	}
	for i, k := range res.Keys[:3] {
		st, err := n.Unseal(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if want := i < 2; st.Sealed != want || (want && st.Progress != i+1) {
			t.Fatalf("after share %d: %+v", i+1, st)
		}
	}
	if _, err := n.Access().LookupToken(res.RootToken); err != nil {
		t.Fatalf("root token: %v", err)
	}
	if _, err := n.Access().LookupToken("kr.nope"); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("unknown token: %v", err)
	}
	secret := []byte("known plaintext 7c1e")
	if _, err := n.Commit(ctx, &Txn{Expect: []fsm.Cond{{Key: "transit/key/a"}}, Writes: []Write{{Key: "transit/key/a", Value: secret}}}); err != nil {
		t.Fatal(err)
	}
	_, err = n.Commit(ctx, &Txn{Expect: []fsm.Cond{{Key: "transit/key/a"}}, Writes: []Write{{Key: "transit/key/a", Value: []byte("x")}}})
	if !errors.Is(err, fsm.ErrConflict) {
		t.Fatalf("stale create: %v", err)
	}
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	n.Shutdown()

	for _, f := range allFiles(t, dir) {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, secret) || bytes.Contains(b, []byte(res.RootToken)) {
			t.Fatalf("%s holds a secret in the clear", f)
		}
	}

	// A restarted node comes back sealed, and wrong shares do not unseal it.
	n2 := startNode(t, dir)
	if !n2.Sealed() || !n2.Initialized() {
		t.Fatal("restarted node should be initialized and sealed")
	}
	n2.Unseal(ctx, res.Keys[4])
	n2.Unseal(ctx, res.Keys[3])
	if _, err := n2.Unseal(ctx, bytes.Repeat([]byte{1}, len(res.Keys[0]))); !errors.Is(err, ErrInvalidUnsealKey) {
		t.Fatalf("bad share: %v", err)
	}
	if !n2.Sealed() || n2.SealStatus().Progress != 0 {
		t.Fatal("bad unseal attempt left progress behind")
	}
	for _, k := range res.Keys[2:5] {
		if _, err := n2.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	got, rev, err := n2.Read("transit/key/a")
	if err != nil || !bytes.Equal(got, secret) || rev == 0 {
		t.Fatalf("after restart: %q@%d %v", got, rev, err)
	}
	sealedHook := make(chan struct{}, 1)
	n2.OnSeal(func() { sealedHook <- struct{}{} })
	n2.Seal()
	<-sealedHook
	if _, _, err := n2.Read("transit/key/a"); !errors.Is(err, ErrSealed) {
		t.Fatalf("read after seal: %v", err)
	}
}

func allFiles(t *testing.T, dir string) []string {
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if len(out) < 3 {
		t.Fatalf("expected raft.db, state.db and a snapshot, found %v", out)
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil {
		t.Fatal("empty config validated")
	}
	c.NodeID, c.DataDir, c.BindAddr = "a", "/tmp/x", "nohostport"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "nohostport") {
		t.Fatalf("bad addr: %v", err)
	}
}
