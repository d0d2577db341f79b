package access_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/store"
)

// TestSealedStore: while the store is sealed, every operation that
// reads or writes a record fails with store.ErrSealed (matched with
// errors.Is, not masked as "not found" or "permission denied"), nothing
// is committed, and everything works again once unsealed.
func TestSealedStore(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	if err := svc.CreateNamespace(bg, "dev"); err != nil {
		t.Fatal(err)
	}
	if err := svc.PutPolicy(bg, "app", appPolicy); err != nil {
		t.Fatal(err)
	}
	tok, te := mkToken(t, svc, access.TokenRequest{TTL: time.Hour, Renewable: true, NumUses: 5})
	_, ae := mkToken(t, svc, access.TokenRequest{})
	_, nse := mkToken(t, svc, access.TokenRequest{Namespace: "dev"})
	g, err := svc.RequestGrant(bg, te, "app", "decrypt", time.Hour, "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	ca := newCA(t, "ca")
	if err := svc.PutCertRole(bg, access.CertRole{Name: "web", Certificate: ca.pem, Policies: []string{"app"}}); err != nil {
		t.Fatal(err)
	}
	leaf := ca.leaf(t, "client", nil, t0.Add(time.Hour), x509.ExtKeyUsageClientAuth)
	if err := svc.SetBreakGlassConfig(bg, access.BreakGlassConfig{Policy: "app"}); err != nil {
		t.Fatal(err)
	}

	m.SetSealed(true)
	idx := m.Index()
	later := t0.Add(time.Minute)
	ops := map[string]func() error{
		"CreateToken": func() error { _, _, err := svc.CreateToken(bg, access.TokenRequest{Now: t0}); return err },
		"CreateToken child": func() error {
			_, _, err := svc.CreateToken(bg, access.TokenRequest{ParentToken: tok, Now: t0})
			return err
		},
		"CreateToken in ns": func() error {
			_, _, err := svc.CreateToken(bg, access.TokenRequest{Namespace: "dev", Now: t0})
			return err
		},
		"LookupToken":     func() error { _, err := svc.LookupToken(tok); return err },
		"LookupAccessor":  func() error { _, err := svc.LookupAccessor(te.Accessor); return err },
		"Authenticate":    func() error { _, err := svc.Authenticate(tok); return err },
		"RenewToken":      func() error { _, err := svc.RenewToken(bg, tok, 0, later); return err },
		"RenewAccessor":   func() error { _, err := svc.RenewAccessor(bg, te.Accessor, 0, later); return err },
		"UseToken":        func() error { return svc.UseToken(bg, tok) },
		"RevokeToken":     func() error { return svc.RevokeToken(bg, tok, false) },
		"RevokeAccessor":  func() error { return svc.RevokeAccessor(bg, te.Accessor, true) },
		"TidyTokens":      func() error { _, err := svc.TidyTokens(bg, t0.Add(48*time.Hour)); return err },
		"ListTokens":      func() error { _, err := svc.ListTokens(); return err },
		"PutPolicy":       func() error { return svc.PutPolicy(bg, "app2", appPolicy) },
		"ReadPolicy":      func() error { _, _, err := svc.ReadPolicy("app"); return err },
		"DeletePolicy":    func() error { return svc.DeletePolicy(bg, "app") },
		"Policies":        func() error { _, err := svc.Policies("", []string{"app"}); return err },
		"CreateNamespace": func() error { return svc.CreateNamespace(bg, "prod") },
		"DeleteNamespace": func() error { return svc.DeleteNamespace(bg, "dev") },
		"TokenNamespaceLive": func() error {
			_, err := svc.TokenNamespaceLive(nse)
			return err
		},
		"RequestGrant": func() error {
			_, err := svc.RequestGrant(bg, te, "app", "encrypt", time.Hour, "r", t0)
			return err
		},
		"ReadGrant":    func() error { _, _, err := svc.ReadGrant(g.ID); return err },
		"ListGrants":   func() error { _, err := svc.ListGrants(); return err },
		"ApproveGrant": func() error { _, err := svc.ApproveGrant(bg, g.ID, ae, t0); return err },
		"RevokeGrant":  func() error { return svc.RevokeGrant(bg, g.ID) },
		"ActiveGrant":  func() error { _, err := svc.ActiveGrant(te.Accessor, "app", "decrypt", t0); return err },
		"TidyGrants":   func() error { _, err := svc.TidyGrants(bg, t0.Add(48*time.Hour)); return err },
		"PutCertRole": func() error {
			return svc.PutCertRole(bg, access.CertRole{Name: "w2", Certificate: ca.pem, Policies: []string{"app"}})
		},
		"ReadCertRole":   func() error { _, err := svc.ReadCertRole("web"); return err },
		"DeleteCertRole": func() error { return svc.DeleteCertRole(bg, "web") },
		"CertLogin":      func() error { _, _, _, err := svc.CertLogin(bg, []*x509.Certificate{leaf}, "web", t0); return err },
		"SetBreakGlass":  func() error { return svc.SetBreakGlassConfig(bg, access.BreakGlassConfig{Policy: "app"}) },
		"BreakGlassConfig": func() error {
			_, err := svc.BreakGlassConfig()
			return err
		},
		"BreakGlassSession": func() error { _, err := svc.BreakGlassSession(t0); return err },
		"IssueBreakGlass":   func() error { _, _, err := svc.IssueBreakGlass(bg, 0, t0); return err },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, store.ErrSealed) {
			t.Errorf("%s sealed: %v, want ErrSealed", name, err)
		}
	}
	if m.Index() != idx {
		t.Fatalf("%d commits while sealed", m.Index()-idx)
	}

	m.SetSealed(false)
	if e := mustLive(t, svc, "token after unseal", tok); e.NumUses != 5 {
		t.Fatalf("uses after unseal: %d", e.NumUses)
	}
	if _, err := svc.RenewToken(bg, tok, 0, later); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ApproveGrant(bg, g.ID, ae, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := svc.CertLogin(bg, []*x509.Certificate{leaf}, "web", t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.IssueBreakGlass(bg, 0, t0); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteNamespace(bg, "dev"); err != nil {
		t.Fatal(err)
	}
}
