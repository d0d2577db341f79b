package transport

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func (ca *testCA) client(t *testing.T, cn string, dns ...string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestCertAuth: a client certificate on the API's TLS listener logs in
// through a role (CA + name match) and gets a token with the role's
// policies; other certificates get nothing.
func TestCertAuth(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", nil)
	h.putPolicy("enc", `path "transit/encrypt/app" { capabilities = ["update"] }`)
	ca, other := newTestCA(t, "apps CA"), newTestCA(t, "other CA")
	h.must(204, "PUT", "auth/cert/certs/apps", map[string]any{
		"certificate": ca.pem, "allowed_common_names": "*.apps.example", "token_policies": []string{"enc"}, "token_ttl": "1h"})
	if r := h.must(200, "GET", "auth/cert/certs/apps", nil); num(r.data(), "token_ttl") != 3600 {
		t.Fatalf("read role: %s", r.raw)
	}
	if r := h.do("PUT", "auth/cert/certs/bad", map[string]any{"certificate": "nope", "token_policies": "enc"}); r.status != 400 {
		t.Fatalf("role without a CA: %d %s", r.status, r.raw)
	}
	if r := h.do("PUT", "auth/cert/certs/bad", map[string]any{"certificate": ca.pem, "token_policies": "root"}); r.status != 400 {
		t.Fatalf("role granting root: %d %s", r.status, r.raw)
	}

	srv := httptest.NewUnstartedServer(h.api)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	login := func(cert *tls.Certificate) (int, map[string]any) {
		c := srv.Client()
		tr := c.Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		c = &http.Client{Transport: tr}
		res, err := c.Post(srv.URL+"/v1/auth/cert/login", "application/json", bytes.NewReader([]byte(`{}`)))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var body map[string]any
		json.Unmarshal(raw, &body)
		return res.StatusCode, body
	}
	good := ca.client(t, "web.apps.example")
	status, body := login(&good)
	auth, _ := body["auth"].(map[string]any)
	if status != 200 || auth == nil {
		t.Fatalf("login: %d %v", status, body)
	}
	tok := auth["client_token"].(string)
	if num(auth, "lease_duration") != 3600 || auth["metadata"].(map[string]any)["common_name"] != "web.apps.example" {
		t.Fatalf("auth block: %v", auth)
	}
	if r := h.as(tok, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")}); r.status != 200 {
		t.Fatalf("encrypt with the cert token: %d %s", r.status, r.raw)
	}
	if r := h.as(tok, "POST", "transit/decrypt/app", map[string]any{"ciphertext": "vault:v1:AAAA"}); r.status != 403 {
		t.Fatalf("decrypt with the cert token: %d", r.status)
	}
	wrongName := ca.client(t, "db.internal")
	wrongCA := other.client(t, "web.apps.example")
	for name, cert := range map[string]*tls.Certificate{"wrong name": &wrongName, "wrong CA": &wrongCA} {
		if status, body := login(cert); status != 403 {
			t.Errorf("%s: %d %v", name, status, body)
		}
		if ev := h.audit.last(); ev.Outcome != "denied" || ev.Identity != "cert:"+cert.Leaf.Subject.CommonName {
			t.Errorf("%s: event %+v", name, ev)
		}
	}
	if status, _ := login(nil); status != 400 {
		t.Errorf("no certificate: %d", status)
	}
	h.must(204, "DELETE", "auth/cert/certs/apps", nil)
	if status, _ := login(&good); status != 403 {
		t.Errorf("after the role is deleted: %d", status)
	}
}

// TestCertRoleNeedsItsPolicies: a certificate role hands its policies to
// every matching certificate, so writing one follows token creation's
// subset rule: without sudo on the role's path a token may grant only
// policies it holds; with sudo any but root.
func TestCertRoleNeedsItsPolicies(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ca := newTestCA(t, "apps CA")
	h.putPolicy("enc", `path "transit/encrypt/app" { capabilities = ["update"] }`)
	h.putPolicy("admin", `path "*" { capabilities = ["create", "read", "update", "delete", "list"] }`)
	h.putPolicy("certs", `path "auth/cert/certs/*" { capabilities = ["create", "update"] }`)
	h.putPolicy("certs-sudo", `path "auth/cert/certs/*" { capabilities = ["create", "update", "sudo"] }`)
	role := func(pols ...string) map[string]any {
		return map[string]any{"certificate": ca.pem, "token_policies": pols}
	}
	writer := h.newToken("certs", "enc")
	if r := h.as(writer, "PUT", "auth/cert/certs/web", role("enc")); r.status != 204 {
		t.Fatalf("role with a policy the writer holds: %d %s", r.status, r.raw)
	}
	if r := h.as(writer, "PUT", "auth/cert/certs/web", role("enc", "default")); r.status != 204 {
		t.Fatalf("role with default: %d %s", r.status, r.raw)
	}
	r := h.as(writer, "PUT", "auth/cert/certs/escalate", role("enc", "admin"))
	if r.status != 403 || len(r.errs()) == 0 || !strings.Contains(r.errs()[0], "admin is not one of them") {
		t.Fatalf("role granting a policy the writer lacks: %d %s", r.status, r.raw)
	}
	if r := h.do("GET", "auth/cert/certs/escalate", nil); r.status != 404 {
		t.Fatalf("the refused role was stored: %d %s", r.status, r.raw)
	}
	sudo := h.newToken("certs-sudo")
	if r := h.as(sudo, "PUT", "auth/cert/certs/ops", role("admin")); r.status != 204 {
		t.Fatalf("role by a sudo writer: %d %s", r.status, r.raw)
	}
	if r := h.as(sudo, "PUT", "auth/cert/certs/ops", role("root")); r.status != 400 {
		t.Fatalf("role granting root, even with sudo: %d %s", r.status, r.raw)
	}
}
