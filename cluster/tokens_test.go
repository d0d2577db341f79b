package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testwait"
)

// TestTokenUsesAcrossNodes: a token with num_uses spent concurrently on
// every node of a 3-node cluster is used exactly num_uses times: each
// spend is a conditional write, so two nodes never spend the same use.
func TestTokenUsesAcrossNodes(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx := context.Background()
	const uses = 12
	tok, _, err := tc.nodes[1].Access().CreateToken(ctx, access.TokenRequest{Policies: []string{"default"}, NumUses: uses, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		testwait.Within(t, 10*time.Second, "the token on every node", func() bool { _, err := n.Access().LookupToken(tok); return err == nil })
	}
	var ok, gone atomic.Int64
	var wg sync.WaitGroup
	for _, n := range tc.nodes {
		for range 3 {
			wg.Add(1)
			go func(n *Node) {
				defer wg.Done()
				for range uses {
					switch err := n.Access().UseToken(ctx, tok); {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, access.ErrPermissionDenied):
						gone.Add(1)
						return
					default:
						t.Errorf("%s: %v", n.cfg.NodeID, err)
						return
					}
				}
			}(n)
		}
	}
	wg.Wait()
	if ok.Load() != uses {
		t.Fatalf("%d uses spent, want exactly %d (%d callers found it gone)", ok.Load(), uses, gone.Load())
	}
	for _, n := range tc.nodes {
		if _, err := n.Access().LookupToken(tok); !errors.Is(err, access.ErrPermissionDenied) {
			t.Fatalf("%s: used-up token still there: %v", n.cfg.NodeID, err)
		}
	}
}

// TestRevokeTreeThroughFollower: revoking a parent on a follower removes
// the whole tree on every node, indexes included; revoke-orphan keeps the
// children as orphans.
func TestRevokeTreeThroughFollower(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx := context.Background()
	f := tc.nodes[1]
	if f.IsLeader() {
		f = tc.nodes[2]
	}
	now := time.Now()
	mk := func(parent string) (string, *access.TokenEntry) {
		tok, e, err := f.Access().CreateToken(ctx, access.TokenRequest{Policies: []string{"default"}, ParentToken: parent, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return tok, e
	}
	root, _ := mk("")
	a, ae := mk(root)
	b, _ := mk(a)
	c, ce := mk(root)
	d, _ := mk(c)
	if err := f.Access().RevokeToken(ctx, c, true); err != nil { // orphan c's children
		t.Fatal(err)
	}
	if e, err := f.Access().LookupToken(d); err != nil || !e.Orphan() {
		t.Fatalf("child after revoke-orphan: %+v %v", e, err)
	}
	if _, err := f.Access().LookupAccessor(ce.Accessor); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("revoked token's accessor index: %v", err)
	}
	if err := f.Access().RevokeToken(ctx, root, false); err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		testwait.Within(t, 10*time.Second, "the revocation on "+n.cfg.NodeID, func() bool {
			_, err := n.Access().LookupToken(b)
			return errors.Is(err, access.ErrPermissionDenied)
		})

		for _, tok := range []string{root, a, b} {
			if _, err := n.Access().LookupToken(tok); !errors.Is(err, access.ErrPermissionDenied) {
				t.Fatalf("%s: token of the revoked tree still there: %v", n.cfg.NodeID, err)
			}
		}
		if _, err := n.Access().LookupAccessor(ae.Accessor); !errors.Is(err, access.ErrPermissionDenied) {
			t.Fatalf("%s: accessor index of a revoked child: %v", n.cfg.NodeID, err)
		}
		if _, err := n.Access().LookupToken(d); err != nil {
			t.Fatalf("%s: the orphan was revoked with its old grandparent: %v", n.cfg.NodeID, err)
		}
		if kids, _ := n.List(fsm.RecordTokenChildren); len(kids) != 0 {
			t.Fatalf("%s: children index left: %v", n.cfg.NodeID, kids)
		}
	}
}

func TestListTokens(t *testing.T) {
	tc := newTestCluster(t, 1)
	n := tc.nodes[0]
	ctx := context.Background()
	_, e, err := n.Access().CreateToken(ctx, access.TokenRequest{Policies: []string{"default", "app"}, TTL: time.Hour, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	list, err := n.Access().ListTokens()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, te := range list {
		found = found || te.Accessor == e.Accessor && te.TTL == time.Hour
	}
	if !found || len(list) != 2 { // the root token from init and this one
		t.Fatalf("ListTokens: %d entries, found=%v", len(list), found)
	}
}
