package certgen

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestIssueVerifies(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test CA", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue([]string{"127.0.0.1", "node-1.example"}, now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	for _, name := range []string{"127.0.0.1", "node-1.example"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s, usage %v: %v", name, usage, err)
			}
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "10.0.0.9"}); err == nil {
		t.Error("the certificate verifies for a host it does not name")
	}
	if leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("the certificate outlives its CA: %v > %v", leaf.NotAfter, ca.Cert.NotAfter)
	}
	// The CA reloads from its files; another CA's key does not fit.
	if _, err := LoadCA(ca.CertPEM, ca.KeyPEM); err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("other", now, time.Hour)
	if _, err := LoadCA(ca.CertPEM, other.KeyPEM); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("LoadCA with another CA's key: %v", err)
	}
	if _, err := LoadCA(certPEM, keyPEM); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("LoadCA of a leaf: %v", err)
	}
	if _, _, err := ca.Issue([]string{"a b"}, now, time.Hour); err == nil {
		t.Error("a host with a space was accepted")
	}
}
