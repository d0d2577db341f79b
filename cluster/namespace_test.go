package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/fsm"
)

// TestDeleteNamespaceRevokes: deleting a namespace revokes its tokens
// (and the tokens made under them) and their grants in the same commit,
// is refused while the namespace holds keys, and a token the deletion
// could not see (made while it was prepared) never works in a namespace
// created again under the name and is removed by the tidy pass.
func TestDeleteNamespaceRevokes(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, t.TempDir())
	if _, err := n.DevInit(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := n.Access().CreateNamespace(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	parent, pe, err := n.Access().CreateToken(ctx, access.TokenRequest{Policies: []string{"app"}, Namespace: "dev", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	child, _, err := n.Access().CreateToken(ctx, access.TokenRequest{Policies: []string{"app"}, ParentToken: parent, Namespace: "dev", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	orphan, _, err := n.Access().CreateToken(ctx, access.TokenRequest{Policies: []string{"app"}, ParentToken: "root", Namespace: "dev", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	rootNS, _, err := n.Access().CreateToken(ctx, access.TokenRequest{Policies: []string{"app"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	g, err := n.Access().RequestGrant(ctx, pe, "ns.dev.app", "decrypt", time.Hour, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Access().PutPolicyIn(ctx, "dev", "app", `path "transit/*" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	// Creating an existing namespace changes nothing (its id stays).
	if err := n.Access().CreateNamespace(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	if live, err := n.Access().TokenNamespaceLive(pe); err != nil || !live {
		t.Fatalf("token after a repeated create: %v %v", live, err)
	}

	// A key in the namespace: refused, nothing revoked.
	if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: fsm.RecordTransitKey + access.NamespaceKeyPrefix("dev") + "app", Value: []byte("{}")}}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Access().DeleteNamespace(ctx, "dev"); !errors.Is(err, access.ErrNamespaceNotEmpty) {
		t.Fatalf("delete with a key: %v", err)
	}
	if _, err := n.Access().LookupToken(parent); err != nil {
		t.Fatalf("token after the refused delete: %v", err)
	}
	if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: fsm.RecordTransitKey + access.NamespaceKeyPrefix("dev") + "app", Delete: true}}}); err != nil {
		t.Fatal(err)
	}

	// No tidy pass runs here: the tokens are gone when the delete returns.
	if err := n.Access().DeleteNamespace(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"parent": parent, "child": child, "child of root": orphan} {
		if _, err := n.Access().LookupToken(tok); !errors.Is(err, access.ErrPermissionDenied) {
			t.Errorf("%s token after the delete: %v", name, err)
		}
	}
	if _, err := n.Access().LookupToken(rootNS); err != nil {
		t.Errorf("root-namespace token after the delete: %v", err)
	}
	if _, err := n.Access().LookupToken("root"); err != nil {
		t.Errorf("root token after the delete: %v", err)
	}
	if _, _, err := n.Access().ReadGrant(g.ID); !errors.Is(err, access.ErrGrantNotFound) {
		t.Errorf("grant of a revoked token: %v", err)
	}
	if _, _, err := n.Access().ReadPolicyIn("dev", "app"); !errors.Is(err, access.ErrPolicyNotFound) {
		t.Errorf("policy of the deleted namespace: %v", err)
	}
	if _, _, err := n.Access().CreateToken(ctx, access.TokenRequest{Policies: []string{"app"}, Namespace: "dev", Now: now}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("token in a deleted namespace: %v", err)
	}

	// A token made in the old namespace that the deletion did not see.
	straggler, err := access.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	se, err := access.NewTokenEntry(straggler, []string{"app"}, now)
	if err != nil {
		t.Fatal(err)
	}
	se.Namespace, se.NamespaceID = "dev", pe.NamespaceID
	v, _ := json.Marshal(se)
	if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: access.TokenRecord(straggler), Value: v}}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Access().CreateNamespace(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	fresh, fe, err := n.Access().CreateToken(ctx, access.TokenRequest{Policies: []string{"app"}, Namespace: "dev", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if fe.NamespaceID == "" || fe.NamespaceID == pe.NamespaceID {
		t.Fatalf("namespace id of the new namespace: %q (old %q)", fe.NamespaceID, pe.NamespaceID)
	}
	if live, err := n.Access().TokenNamespaceLive(se); err != nil || live {
		t.Fatalf("old namespace's token in the new namespace: live=%v %v", live, err)
	}
	if k, err := n.Access().TidyTokens(ctx, now); err != nil || k != 1 {
		t.Fatalf("tidy: %d %v", k, err)
	}
	if _, err := n.Access().LookupToken(straggler); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("straggler after tidy: %v", err)
	}
	if _, err := n.Access().LookupToken(fresh); err != nil {
		t.Fatalf("new namespace's token after tidy: %v", err)
	}
}
