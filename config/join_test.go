package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/certgen"
)

// TestRetryJoinTLSConfig reads the TLS files of a retry_join block:
// good files give a config that trusts the CA, presents the client
// certificate and checks the server name; a missing file, a file without
// a certificate and a key of another certificate are refused, naming the
// block, the setting and the file.
func TestRetryJoinTLSConfig(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, err := certgen.NewCA("test CA", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue([]string{"127.0.0.1"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := ca.Issue([]string{"127.0.0.2"}, now, time.Hour)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, certFile, keyFile := write("ca.pem", ca.CertPEM), write("api.pem", certPEM), write("api-key.pem", keyPEM)
	otherKeyFile, notPEM := write("other-key.pem", otherKey), write("junk.pem", []byte("not a certificate\n"))

	src := `storage "raft" {
  path    = "/data"
  node_id = "n2"
  retry_join {
    leader_api_addr         = "https://127.0.0.1:8200"
    leader_ca_cert_file     = "` + caFile + `"
    leader_client_cert_file = "` + certFile + `"
    leader_client_key_file  = "` + keyFile + `"
    leader_tls_servername   = "node-1.internal"
  }
  retry_join {
    leader_api_addr = "https://127.0.0.1:8210"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8220"
  tls_disable = true
}
`
	c, err := Parse([]byte(src), "keyraft.hcl")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := c.Storage.RetryJoin[0].TLSConfig()
	if err != nil || tc == nil {
		t.Fatalf("TLSConfig: %v, %v", tc, err)
	}
	if tc.RootCAs == nil || !tc.RootCAs.Equal(mustPool(t, ca.CertPEM)) || len(tc.Certificates) != 1 || tc.ServerName != "node-1.internal" || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLSConfig = %+v", tc)
	}
	if tc, err := c.Storage.RetryJoin[1].TLSConfig(); tc != nil || err != nil {
		t.Errorf("a block without TLS settings: %v, %v; want nil, nil (the system's roots)", tc, err)
	}

	for _, tt := range []struct {
		name string
		j    RetryJoin
		want string
	}{
		{"missing CA", RetryJoin{LeaderCACertFile: filepath.Join(dir, "nope.pem")},
			`storage "raft": retry_join "https://127.0.0.1:8200": leader_ca_cert_file: open ` + filepath.Join(dir, "nope.pem") + `: no such file or directory`},
		{"CA not PEM", RetryJoin{LeaderCACertFile: notPEM},
			`storage "raft": retry_join "https://127.0.0.1:8200": leader_ca_cert_file ` + notPEM + ` holds no PEM certificate`},
		{"key of another certificate", RetryJoin{LeaderClientCertFile: certFile, LeaderClientKeyFile: otherKeyFile},
			`storage "raft": retry_join "https://127.0.0.1:8200": leader_client_cert_file ` + certFile + ` and leader_client_key_file ` + otherKeyFile + `: tls: private key does not match public key`},
	} {
		tt.j.LeaderAPIAddr = "https://127.0.0.1:8200"
		_, err := tt.j.TLSConfig()
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v\nwant: %s", tt.name, err, tt.want)
		}
	}
}

func mustPool(t *testing.T, pem []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate")
	}
	return p
}
