package access_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// leaf issues a client certificate valid from t0-1h to notAfter.
func (ca *testCA) leaf(t *testing.T, cn string, dns []string, notAfter time.Time, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(t), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: t0.Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestCertRoleValidate(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	ca := newCA(t, "ca")
	ok := access.CertRole{Name: "web", Certificate: ca.pem, Policies: []string{"app"}, AllowedCommonNames: []string{"*.example.com"}}
	for name, mut := range map[string]func(r *access.CertRole){
		"bad name": func(r *access.CertRole) { r.Name = "a/b" },
		"no pem":   func(r *access.CertRole) { r.Certificate = "" },
		"not a cert": func(r *access.CertRole) {
			r.Certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
		},
		"bad glob":     func(r *access.CertRole) { r.AllowedDNSSANs = []string{"[x"} },
		"no policies":  func(r *access.CertRole) { r.Policies = nil },
		"root policy":  func(r *access.CertRole) { r.Policies = []string{"app", "root"} },
		"negative ttl": func(r *access.CertRole) { r.TTL = -time.Second },
		"ttl too long": func(r *access.CertRole) { r.TTL = access.MaxTokenTTL + time.Second },
	} {
		r := ok
		mut(&r)
		if err := svc.PutCertRole(bg, r); !errors.Is(err, access.ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if m.Index() != 0 {
		t.Fatal("refused roles committed")
	}
	if err := svc.PutCertRole(bg, ok); err != nil {
		t.Fatal(err)
	}
	got, err := svc.ReadCertRole("web")
	if err != nil || got.Certificate != ca.pem || !slices.Equal(got.Policies, []string{"app"}) {
		t.Fatalf("read: %+v %v", got, err)
	}
	if l, _ := svc.ListCertRoles(); !slices.Equal(l, []string{"web"}) {
		t.Fatalf("list: %v", l)
	}
	if err := svc.DeleteCertRole(bg, "web"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "a/b"} {
		if _, err := svc.ReadCertRole(name); !errors.Is(err, access.ErrCertRoleNotFound) {
			t.Fatalf("read %q: %v", name, err)
		}
	}
	if err := svc.DeleteCertRole(bg, "web"); err != nil {
		t.Fatalf("delete of an absent role: %v", err)
	}
}

// TestCertLogin: a client certificate that chains to a role's CA and
// whose names match gets an orphan token with the role's policies; any
// other certificate is ErrCertNoMatch.
func TestCertLogin(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	caA, caB := newCA(t, "ca-a"), newCA(t, "ca-b")
	if err := svc.PutCertRole(bg, access.CertRole{Name: "a-web", Certificate: caA.pem, Policies: []string{"web"},
		AllowedCommonNames: []string{"*.example.com"}, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := svc.PutCertRole(bg, access.CertRole{Name: "b-dns", Certificate: caB.pem, Policies: []string{"dns"},
		AllowedDNSSANs: []string{"*.internal"}, DisplayName: "dns-client"}); err != nil {
		t.Fatal(err)
	}
	year := t0.Add(365 * 24 * time.Hour)
	web := caA.leaf(t, "svc.example.com", nil, year, x509.ExtKeyUsageClientAuth)
	tok, e, role, err := svc.CertLogin(bg, []*x509.Certificate{web}, "", t0)
	if err != nil {
		t.Fatal(err)
	}
	if role.Name != "a-web" || !slices.Equal(e.Policies, []string{"default", "web"}) || !e.Orphan() ||
		e.Path != "auth/cert/login" || !e.Renewable || !e.ExpireTime.Equal(t0.Add(time.Hour)) ||
		e.DisplayName != "cert-svc.example.com" || e.Meta["cert_name"] != "a-web" || e.Meta["common_name"] != "svc.example.com" ||
		len(e.Meta[access.MetaCertFingerprint]) != 64 {
		t.Fatalf("login entry %+v (role %s)", e, role.Name)
	}
	mustLive(t, svc, "cert token", tok)

	dns := caB.leaf(t, "anything", []string{"db.internal"}, year, x509.ExtKeyUsageClientAuth)
	_, e, role, err = svc.CertLogin(bg, []*x509.Certificate{dns}, "", t0)
	if err != nil || role.Name != "b-dns" || e.DisplayName != "dns-client" || !e.ExpireTime.Equal(t0.Add(access.DefaultTokenTTL)) {
		t.Fatalf("login by SAN: %+v %v", e, err)
	}

	for name, c := range map[string]struct {
		chain []*x509.Certificate
		role  string
		now   time.Time
	}{
		"no certificate":     {nil, "", t0},
		"name not allowed":   {[]*x509.Certificate{caA.leaf(t, "svc.example.org", nil, year, x509.ExtKeyUsageClientAuth)}, "", t0},
		"san not allowed":    {[]*x509.Certificate{caB.leaf(t, "x", []string{"db.external"}, year, x509.ExtKeyUsageClientAuth)}, "", t0},
		"expired":            {[]*x509.Certificate{web}, "", year.Add(time.Second)},
		"server certificate": {[]*x509.Certificate{caA.leaf(t, "svc.example.com", nil, year, x509.ExtKeyUsageServerAuth)}, "", t0},
		"other role's CA":    {[]*x509.Certificate{web}, "b-dns", t0},
		"unknown CA":         {[]*x509.Certificate{newCA(t, "evil").leaf(t, "svc.example.com", nil, year, x509.ExtKeyUsageClientAuth)}, "", t0},
	} {
		if _, _, _, err := svc.CertLogin(bg, c.chain, c.role, c.now); !errors.Is(err, access.ErrCertNoMatch) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, _, err := svc.CertLogin(bg, []*x509.Certificate{web}, "nope", t0); !errors.Is(err, access.ErrCertRoleNotFound) {
		t.Errorf("unknown named role: %v", err)
	}
	if _, _, r, err := svc.CertLogin(bg, []*x509.Certificate{web}, "a-web", t0); err != nil || r.Name != "a-web" {
		t.Errorf("named role: %v", err)
	}
}

// TestCertLoginOneIdentity: two logins with one certificate, or with two
// certificates of one common name under one role, are one identity for
// the two-person rule; another common name is another.
func TestCertLoginOneIdentity(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ca := newCA(t, "ca")
	if err := svc.PutCertRole(bg, access.CertRole{Name: "ops", Certificate: ca.pem, Policies: []string{"ops"}}); err != nil {
		t.Fatal(err)
	}
	year := t0.Add(365 * 24 * time.Hour)
	login := func(c *x509.Certificate) *access.TokenEntry {
		t.Helper()
		_, e, _, err := svc.CertLogin(bg, []*x509.Certificate{c}, "ops", t0)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	alice := ca.leaf(t, "alice", nil, year, x509.ExtKeyUsageClientAuth)
	first, second := login(alice), login(alice)
	reissued := login(ca.leaf(t, "alice", nil, year, x509.ExtKeyUsageClientAuth))
	bob := login(ca.leaf(t, "bob", nil, year, x509.ExtKeyUsageClientAuth))
	if first.Accessor == second.Accessor {
		t.Fatal("two logins gave one token")
	}
	g, err := svc.RequestGrant(bg, first, "app", "decrypt", time.Hour, "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]*access.TokenEntry{"same certificate": second, "same common name": reissued} {
		if _, err := svc.ApproveGrant(bg, g.ID, e, t0); !errors.Is(err, access.ErrTwoPerson) || !strings.Contains(err.Error(), "with the requester's client certificate") {
			t.Errorf("approval by the %s: %v", name, err)
		}
	}
	if _, err := svc.ApproveGrant(bg, g.ID, bob, t0); err != nil {
		t.Errorf("approval by another person: %v", err)
	}
}

func randSerial(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
