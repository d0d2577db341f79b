package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/seal"
)

// A rekey through a follower replaces the root key and the shares: every
// node keeps serving, a keyring rotated afterwards loads on every node
// (they take the new root key from the barrier), and a node restarted
// afterwards unseals with the new shares and not with the old ones.
func TestRekeyAcrossCluster(t *testing.T) {
	ctx := context.Background()
	fixed := func(id string) Config {
		c := clusterNodeConfig(t, id)
		c.BindAddr, c.GossipAddr = freeAddr(t), freeAddr(t)
		return c
	}
	cfgs := []Config{fixed("n1"), fixed("n2"), fixed("n3")}
	first, err := New(cfgs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Shutdown() })
	res, err := first.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range res.Keys[:2] {
		if _, err := first.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	tc := &testCluster{t: t, nodes: []*Node{first}, shares: res.Keys}
	t.Cleanup(func() {
		for _, n := range tc.nodes {
			n.Shutdown()
		}
	})
	for _, c := range cfgs[1:] {
		tc.join(ctx, c)
	}
	tc.waitVoters(3)
	if _, err := first.Commit(ctx, &Txn{Writes: []Write{{Key: "before", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	var f *Node
	for _, n := range tc.nodes {
		if !n.IsLeader() {
			f = n
			break
		}
	}
	if _, _, err := f.RekeyUpdate(ctx, "nope", res.Keys[0]); !errors.Is(err, ErrRekeyNonce) {
		t.Fatalf("update without init: %v", err)
	}
	st, err := f.RekeyInit(5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Required != 2 {
		t.Fatalf("rekey needs %d current shares, want 2", st.Required)
	}
	// A wrong set of current shares resets the progress.
	foreign, _ := New(clusterNodeConfig(t, "x"))
	defer foreign.Shutdown()
	fres, err := foreign.Init(ctx, InitRequest{SecretShares: 2, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	f.RekeyUpdate(ctx, st.Nonce, fres.Keys[0])
	if _, _, err := f.RekeyUpdate(ctx, st.Nonce, fres.Keys[1]); !errors.Is(err, ErrInvalidUnsealKey) {
		t.Fatalf("rekey with another cluster's shares: %v", err)
	}
	if _, r, err := f.RekeyUpdate(ctx, st.Nonce, res.Keys[0]); err != nil || r != nil {
		t.Fatalf("first share: %v %v", r, err)
	}
	_, r, err := f.RekeyUpdate(ctx, st.Nonce, res.Keys[2])
	if err != nil || r == nil || len(r.Keys) != 5 || r.Recovery {
		t.Fatalf("rekey: %+v %v", r, err)
	}
	for _, n := range tc.nodes {
		if st := n.SealStatus(); st.Shares != 5 || st.Threshold != 3 {
			testwait.Within(t, 20*time.Second, n.cfg.NodeID+" to see the new share parameters", func() bool {
				st := n.SealStatus()
				return st.Shares == 5 && st.Threshold == 3
			})

		}
	}
	// A rotation after the rekey loads on every node.
	term, err := tc.leader().RotateKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		testwait.Within(t, 30*time.Second, n.cfg.NodeID+" to use the keyring rotated after the rekey", func() bool { return n.barrier.ActiveTerm() == term })
		if v, _, err := n.Read("before"); err != nil || string(v) != "v" {
			t.Fatalf("%s after rekey and rotation: %q %v", n.cfg.NodeID, v, err)
		}
	}
	// Restart a node: the old shares no longer unseal it, the new ones do.
	i := 0
	for j, n := range tc.nodes {
		if n != tc.leader() {
			i = j
			break
		}
	}
	tc.nodes[i].Shutdown()
	n, err := New(cfgs[i])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	tc.nodes[i] = n
	testwait.Within(t, 30*time.Second, "the restarted node to catch up", n.CaughtUp)
	n.Unseal(ctx, res.Keys[0]) // the threshold is 3 now
	n.Unseal(ctx, res.Keys[1])
	if _, err := n.Unseal(ctx, res.Keys[2]); !errors.Is(err, ErrInvalidUnsealKey) {
		t.Fatalf("old shares after a rekey: %v", err)
	}
	for _, k := range r.Keys[2:] {
		if _, err := n.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if n.Sealed() {
		t.Fatal("the new shares did not unseal")
	}
	if v, _, err := n.Read("before"); err != nil || string(v) != "v" {
		t.Fatalf("after unsealing with the new shares: %q %v", v, err)
	}
}

// With the HSM seal, a rekey issues new recovery keys; the old ones no
// longer authorize anything.
func TestRekeyRecoveryKeys(t *testing.T) {
	h := newSoftHSM(t)
	ctx := context.Background()
	n, err := New(h.nodeConfig(t, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	defer n.Shutdown()
	res, err := n.Init(ctx, InitRequest{RecoveryShares: 2, RecoveryThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	st, err := n.RekeyInit(3, 2)
	if err != nil {
		t.Fatal(err)
	}
	n.RekeyUpdate(ctx, st.Nonce, res.RecoveryKeys[0])
	_, r, err := n.RekeyUpdate(ctx, st.Nonce, res.RecoveryKeys[1])
	if err != nil || r == nil || !r.Recovery || len(r.Keys) != 3 {
		t.Fatalf("rekey with recovery keys: %+v %v", r, err)
	}
	st, _ = n.RekeyInit(2, 2)
	n.RekeyUpdate(ctx, st.Nonce, res.RecoveryKeys[0])
	if _, _, err := n.RekeyUpdate(ctx, st.Nonce, res.RecoveryKeys[1]); !errors.Is(err, ErrInvalidUnsealKey) {
		t.Fatalf("old recovery keys after a rekey: %v", err)
	}
	// The node still unseals itself with the HSM after a restart.
	cfg := n.cfg
	n.Shutdown()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	defer m.Shutdown()
	testwait.Within(t, 30*time.Second, "auto-unseal after the rekey", func() bool { return !m.Sealed() })
}

// A root token is generated from the current shares (recovery shares with
// the HSM seal) and released XORed with the starter's one-time pad; it
// works, and wrong shares or a wrong nonce get nothing.
func TestGenerateRoot(t *testing.T) {
	h := newSoftHSM(t)
	ctx := context.Background()
	n, err := New(h.nodeConfig(t, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	defer n.Shutdown()
	res, err := n.Init(ctx, InitRequest{RecoveryShares: 3, RecoveryThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	nonce, otp, required, err := n.GenerateRootInit()
	if err != nil || required != 2 {
		t.Fatalf("init: %v, required %d", err, required)
	}
	if _, _, _, err := n.GenerateRootUpdate(ctx, "wrong", res.RecoveryKeys[0]); !errors.Is(err, ErrRekeyNonce) {
		t.Fatalf("wrong nonce: %v", err)
	}
	if p, _, enc, err := n.GenerateRootUpdate(ctx, nonce, res.RecoveryKeys[0]); err != nil || p != 1 || enc != "" {
		t.Fatalf("first share: %d %q %v", p, enc, err)
	}
	_, _, enc, err := n.GenerateRootUpdate(ctx, nonce, res.RecoveryKeys[2])
	if err != nil || enc == "" {
		t.Fatalf("second share: %q %v", enc, err)
	}
	token, err := DecodeRootToken(enc, otp)
	if err != nil {
		t.Fatal(err)
	}
	te, err := n.Access().LookupToken(token)
	if err != nil || len(te.Policies) != 1 || te.Policies[0] != "root" {
		t.Fatalf("the generated token: %+v %v", te, err)
	}
	// The encoded form alone is not the token.
	if enc == token {
		t.Fatal("the token was released without the pad")
	}
	// Shares of another split do not form the recovery key.
	nonce, _, _, _ = n.GenerateRootInit()
	other, _, _, _ := func() ([][]byte, int, int, error) {
		k, _ := seal.NewRootKey()
		s, err := seal.Split(k, 2, 2)
		return s, 0, 0, err
	}()
	n.GenerateRootUpdate(ctx, nonce, other[0])
	if _, _, enc, err := n.GenerateRootUpdate(ctx, nonce, other[1]); !errors.Is(err, ErrInvalidUnsealKey) || enc != "" {
		t.Fatalf("foreign shares: %q %v", enc, err)
	}
}
