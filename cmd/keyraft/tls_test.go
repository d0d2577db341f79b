package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyraft/keyraft/config"
)

// tlsFiles makes a CA and a certificate for 127.0.0.1 with the
// 'operator tls' commands in dir and returns the paths.
func tlsFiles(t *testing.T, dir, name string) (ca, cert, key string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err != nil {
		if out, errOut, code := keyraft(t, nil, "", "operator", "tls", "ca", "-dir", dir); code != 0 {
			t.Fatalf("operator tls ca: exit %d\n%s%s", code, out, errOut)
		}
	}
	ca = filepath.Join(dir, "ca.pem")
	if out, errOut, code := keyraft(t, nil, "", "operator", "tls", "cert", "-ca", ca, "-host", "127.0.0.1,localhost", "-dir", dir, "-name", name); code != 0 {
		t.Fatalf("operator tls cert: exit %d\n%s%s", code, out, errOut)
	}
	return ca, filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
}

// TestOperatorTLS makes a CA and a node certificate: the keys are 0600,
// the certificate chains to the CA for 127.0.0.1 and localhost, as a
// server and as a client, and nothing is overwritten.
func TestOperatorTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := tlsFiles(t, dir, "api")
	for _, p := range []string{filepath.Join(dir, "ca-key.pem"), key} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", p, err, fi.Mode().Perm())
		}
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	caPEM, _ := os.ReadFile(ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
				t.Errorf("%s, usage %v: %v", host, u, err)
			}
		}
	}

	for _, tt := range []struct {
		args    []string
		code    int
		errPart string
	}{
		{[]string{"ca", "-dir", dir}, 1, "ca.pem exists"},
		{[]string{"cert", "-ca", ca, "-host", "127.0.0.1", "-dir", dir}, 1, "api.pem exists"},
		{[]string{"cert", "-ca", ca, "-dir", dir, "-name", "n2"}, 2, "-host is required"},
		{[]string{"cert", "-ca", filepath.Join(dir, "nope.pem"), "-host", "127.0.0.1", "-dir", dir, "-name", "n3"}, 1, "make a CA with 'keyraft operator tls ca'"},
		{[]string{"cert", "-ca", ca, "-ca-key", key, "-host", "127.0.0.1", "-dir", dir, "-name", "n4"}, 1, "does not belong to the CA certificate"},
		{[]string{"cert", "-ca", cert, "-ca-key", key, "-host", "127.0.0.1", "-dir", dir, "-name", "n5"}, 1, "not a CA's"},
	} {
		_, errOut, code := keyraft(t, nil, "", append([]string{"operator", "tls"}, tt.args...)...)
		if code != tt.code || !strings.Contains(errOut, tt.errPart) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d with %q", tt.args, code, errOut, tt.code, tt.errPart)
		}
	}
	// -dir is created when missing, as the README's pki/node-1.
	sub := filepath.Join(dir, "pki", "node-1")
	if _, errOut, code := keyraft(t, nil, "", "operator", "tls", "cert", "-ca", ca, "-host", "10.0.0.1", "-dir", sub); code != 0 {
		t.Errorf("cert into a new directory: exit %d, %s", code, errOut)
	} else if _, err := tls.LoadX509KeyPair(filepath.Join(sub, "api.pem"), filepath.Join(sub, "api-key.pem")); err != nil {
		t.Error(err)
	}
	for _, n := range []string{"n2", "n3", "n4", "n5"} {
		if _, err := os.Stat(filepath.Join(dir, n+"-key.pem")); err == nil {
			t.Errorf("a refused command left %s-key.pem behind", n)
		}
	}
}

// TestJoinClient: a member a retry_join block names is reached with that
// block's CA; another address (the leader a member points to) with the
// first block's settings; a block's missing CA file stops the start; no
// TLS settings at all leave the default client.
func TestJoinClient(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := tlsFiles(t, dir, "a")
	serve := func(cert, key string) *httptest.Server {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
		s.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	_, certB, keyB := tlsFiles(t, dir, "b")
	named, other := serve(cert, key), serve(certB, keyB)
	c, err := joinClient([]config.RetryJoin{
		{LeaderAPIAddr: "https://127.0.0.1:1"}, // no TLS settings: system roots
		{LeaderAPIAddr: named.URL, LeaderCACertFile: ca},
	})
	if err != nil || c == nil {
		t.Fatalf("joinClient: %v, %v", c, err)
	}
	for _, s := range []*httptest.Server{named, other} {
		resp, err := c.Get(s.URL)
		if err != nil {
			t.Errorf("GET %s: %v", s.URL, err)
			continue
		}
		resp.Body.Close()
	}
	if c, err := joinClient([]config.RetryJoin{{LeaderAPIAddr: named.URL}}); c != nil || err != nil {
		t.Errorf("without TLS settings: %v, %v; want the default client", c, err)
	}
	if _, err := http.Get(named.URL); err == nil {
		t.Error("the default client trusts the private CA; the test shows nothing")
	}
	_, err = joinClient([]config.RetryJoin{{LeaderAPIAddr: named.URL, LeaderCACertFile: filepath.Join(dir, "gone.pem")}})
	if err == nil || !strings.Contains(err.Error(), "leader_ca_cert_file: open "+filepath.Join(dir, "gone.pem")) {
		t.Errorf("a missing CA file: %v", err)
	}
}
