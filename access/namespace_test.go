package access_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/fsm"
)

func TestValidNamespace(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"dev": true, "a": true, "0x": true, "prod-eu_1": true, strings.Repeat("a", 64): true,
		"": false, "Dev": false, "-x": false, "_x": false, "a.b": false, "a/b": false, "a b": false,
		strings.Repeat("a", 65): false,
	} {
		if got := access.ValidNamespace(name); got != want {
			t.Errorf("ValidNamespace(%q) = %v", name, got)
		}
	}
	if access.NamespaceKeyPrefix("") != "" || access.NamespaceKeyPrefix("dev") != "ns.dev." {
		t.Fatal("NamespaceKeyPrefix")
	}
}

// TestNamespaceCreate: creation is idempotent (the id its tokens carry
// stays), invalid names are refused, and tokens made in it carry its id.
func TestNamespaceCreate(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	for _, bad := range []string{"", "Dev", "a.b"} {
		if err := svc.CreateNamespace(bg, bad); !errors.Is(err, access.ErrInvalidRequest) {
			t.Fatalf("create %q: %v", bad, err)
		}
	}
	if ok, _ := svc.NamespaceExists("dev"); ok {
		t.Fatal("dev exists before creation")
	}
	if err := svc.CreateNamespace(bg, "dev"); err != nil {
		t.Fatal(err)
	}
	_, e := mkToken(t, svc, access.TokenRequest{Namespace: "dev"})
	if e.Namespace != "dev" || e.NamespaceID == "" {
		t.Fatalf("token in dev: %+v", e)
	}
	idx := m.Index()
	if err := svc.CreateNamespace(bg, "dev"); err != nil {
		t.Fatal(err)
	}
	if m.Index() != idx {
		t.Fatal("creating an existing namespace committed")
	}
	if live, err := svc.TokenNamespaceLive(e); err != nil || !live {
		t.Fatalf("token after a repeated create: %v %v", live, err)
	}
	if err := svc.CreateNamespace(bg, "prod"); err != nil {
		t.Fatal(err)
	}
	if l, err := svc.ListNamespaces(); err != nil || !slices.Equal(l, []string{"dev", "prod"}) {
		t.Fatalf("list: %v %v", l, err)
	}
	for name, want := range map[string]bool{"": true, "dev": true, "prod": true, "test": false, "Bad!": false} {
		if ok, err := svc.NamespaceExists(name); err != nil || ok != want {
			t.Errorf("NamespaceExists(%q) = %v %v", name, ok, err)
		}
	}
	if live, _ := svc.TokenNamespaceLive(&access.TokenEntry{}); !live {
		t.Fatal("root-namespace token not live")
	}
	if live, _ := svc.TokenNamespaceLive(&access.TokenEntry{Namespace: "Bad!"}); live {
		t.Fatal("token of an invalid namespace live")
	}
}

// TestDeleteNamespace: deleting a namespace is refused while it holds
// transit keys (ErrNamespaceNotEmpty, nothing changed); otherwise it
// removes the namespace and its policies and revokes its tokens (with
// the tokens made under them) and their grants in one commit, leaving
// other namespaces alone. A namespace created again has a new id that
// the old tokens do not carry.
func TestDeleteNamespace(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	for _, ns := range []string{"dev", "dev2"} {
		if err := svc.CreateNamespace(bg, ns); err != nil {
			t.Fatal(err)
		}
		if err := svc.PutPolicyIn(bg, ns, "app", appPolicy); err != nil {
			t.Fatal(err)
		}
	}
	root, _ := mkToken(t, svc, access.TokenRequest{Policies: []string{"root"}})
	parent, pe := mkToken(t, svc, access.TokenRequest{Policies: []string{"app"}, Namespace: "dev"})
	child, _ := mkToken(t, svc, access.TokenRequest{Policies: []string{"app"}, Namespace: "dev", ParentToken: parent})
	ofRoot, _ := mkToken(t, svc, access.TokenRequest{Policies: []string{"app"}, Namespace: "dev", ParentToken: root})
	rootNS, rne := mkToken(t, svc, access.TokenRequest{Policies: []string{"app"}})
	dev2, _ := mkToken(t, svc, access.TokenRequest{Policies: []string{"app"}, Namespace: "dev2"})
	g, err := svc.RequestGrant(bg, pe, "ns.dev.app", "decrypt", time.Hour, "incident", t0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := svc.RequestGrant(bg, rne, "app", "decrypt", time.Hour, "incident", t0)
	if err != nil {
		t.Fatal(err)
	}

	// A key in the namespace: refused, nothing revoked.
	keyRec := fsm.RecordTransitKey + access.NamespaceKeyPrefix("dev") + "app"
	m.Put(keyRec, []byte("{}"))
	// A key of dev2 and one of the root namespace do not count.
	m.Put(fsm.RecordTransitKey+access.NamespaceKeyPrefix("dev2")+"app", []byte("{}"))
	m.Put(fsm.RecordTransitKey+"dev", []byte("{}"))
	idx := m.Index()
	if err := svc.DeleteNamespace(bg, "dev"); !errors.Is(err, access.ErrNamespaceNotEmpty) {
		t.Fatalf("delete with a key: %v", err)
	}
	if m.Index() != idx {
		t.Fatal("refused delete committed")
	}
	mustLive(t, svc, "token after the refused delete", parent)
	if ok, _ := svc.NamespaceExists("dev"); !ok {
		t.Fatal("namespace gone after the refused delete")
	}
	if _, err := m.Commit(bg, deleteTxn(keyRec)); err != nil {
		t.Fatal(err)
	}

	idx = m.Index()
	if err := svc.DeleteNamespace(bg, "dev"); err != nil {
		t.Fatal(err)
	}
	if m.Index() != idx+1 {
		t.Fatalf("delete took %d commits, want one", m.Index()-idx)
	}
	for name, tok := range map[string]string{"parent": parent, "child": child, "child of root": ofRoot} {
		mustGone(t, svc, name+" after the delete", tok)
	}
	mustLive(t, svc, "root token", root)
	mustLive(t, svc, "root-namespace token", rootNS)
	mustLive(t, svc, "dev2 token", dev2)
	if _, _, err := svc.ReadGrant(g.ID); !errors.Is(err, access.ErrGrantNotFound) {
		t.Fatalf("grant of a revoked token: %v", err)
	}
	if _, _, err := svc.ReadGrant(other.ID); err != nil {
		t.Fatalf("grant of a root-namespace token: %v", err)
	}
	if _, _, err := svc.ReadPolicyIn("dev", "app"); !errors.Is(err, access.ErrPolicyNotFound) {
		t.Fatalf("policy of the deleted namespace: %v", err)
	}
	if _, _, err := svc.ReadPolicyIn("dev2", "app"); err != nil {
		t.Fatalf("policy of dev2: %v", err)
	}
	if ok, _ := svc.NamespaceExists("dev"); ok {
		t.Fatal("namespace still exists")
	}
	if _, _, err := svc.CreateToken(bg, access.TokenRequest{Namespace: "dev", Now: t0}); !errors.Is(err, access.ErrInvalidRequest) {
		t.Fatalf("token in a deleted namespace: %v", err)
	}
	if live, _ := svc.TokenNamespaceLive(pe); live {
		t.Fatal("token of the deleted namespace live")
	}
	for _, name := range []string{"dev", "nope", "Bad!"} {
		if err := svc.DeleteNamespace(bg, name); !errors.Is(err, access.ErrNamespaceNotFound) {
			t.Fatalf("delete %q: %v", name, err)
		}
	}

	// A token made in the old namespace that the deletion did not see
	// never works in the new one, and tidy removes it.
	straggler, _ := access.NewToken()
	se, _ := access.NewTokenEntry(straggler, []string{"app"}, t0)
	se.Namespace, se.NamespaceID = "dev", pe.NamespaceID
	m.Put(access.TokenRecord(straggler), mustJSON(t, se))
	if err := svc.CreateNamespace(bg, "dev"); err != nil {
		t.Fatal(err)
	}
	fresh, fe := mkToken(t, svc, access.TokenRequest{Namespace: "dev"})
	if fe.NamespaceID == "" || fe.NamespaceID == pe.NamespaceID {
		t.Fatalf("id of the new namespace %q, old %q", fe.NamespaceID, pe.NamespaceID)
	}
	if live, err := svc.TokenNamespaceLive(se); err != nil || live {
		t.Fatalf("old token in the new namespace: %v %v", live, err)
	}
	if n, err := svc.TidyTokens(bg, t0); err != nil || n != 1 {
		t.Fatalf("tidy: %d %v", n, err)
	}
	mustGone(t, svc, "straggler after tidy", straggler)
	mustLive(t, svc, "new namespace's token", fresh)
}
