package config

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
)

// joinTLSFields names the TLS settings of a retry_join block and reads
// them, in the order errors name them.
func (j *RetryJoin) joinTLSFields() []struct{ name, value string } {
	return []struct{ name, value string }{
		{"leader_ca_cert_file", j.LeaderCACertFile},
		{"leader_client_cert_file", j.LeaderClientCertFile},
		{"leader_client_key_file", j.LeaderClientKeyFile},
		{"leader_tls_servername", j.LeaderTLSServerName},
	}
}

// HasTLS reports whether j sets any of the leader_* TLS settings.
func (j *RetryJoin) HasTLS() bool {
	for _, f := range j.joinTLSFields() {
		if f.value != "" {
			return true
		}
	}
	return false
}

// validateTLS checks the TLS settings of retry_join block field without
// reading the files: they go with an https address, and the client
// certificate and key come together.
func (j *RetryJoin) validateTLS(field string) error {
	for _, f := range j.joinTLSFields() {
		if f.value == "" {
			continue
		}
		if u, err := url.Parse(j.LeaderAPIAddr); err == nil && u.Scheme != "https" {
			return invalid(field+"."+f.name, `storage "raft": retry_join: %s is for an https:// leader_api_addr, not %q`, f.name, j.LeaderAPIAddr)
		}
		if !printable(f.value) {
			return invalid(field+"."+f.name, `storage "raft": retry_join: %s %q has spaces or control characters`, f.name, f.value)
		}
	}
	switch {
	case j.LeaderClientCertFile != "" && j.LeaderClientKeyFile == "":
		return invalid(field+".leader_client_cert_file", `storage "raft": retry_join: leader_client_cert_file and leader_client_key_file go together; leader_client_key_file is missing`)
	case j.LeaderClientKeyFile != "" && j.LeaderClientCertFile == "":
		return invalid(field+".leader_client_key_file", `storage "raft": retry_join: leader_client_cert_file and leader_client_key_file go together; leader_client_cert_file is missing`)
	}
	return nil
}

// TLSConfig returns the TLS settings for reaching the member at
// LeaderAPIAddr, or nil when the block sets none (the system's roots
// apply). It reads the files: the CA file must hold a PEM certificate,
// the client certificate must match its key. The error wraps ErrInvalid
// and names the block by its leader_api_addr, the setting and the file.
func (j *RetryJoin) TLSConfig() (*tls.Config, error) {
	if !j.HasTLS() {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return invalid("", `storage "raft": retry_join %q: `+format, append([]any{j.LeaderAPIAddr}, args...)...)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: j.LeaderTLSServerName}
	if j.LeaderCACertFile != "" {
		pem, err := os.ReadFile(j.LeaderCACertFile)
		if err != nil {
			return nil, bad("leader_ca_cert_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, bad("leader_ca_cert_file %s holds no PEM certificate", j.LeaderCACertFile)
		}
		tc.RootCAs = pool
	}
	if j.LeaderClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(j.LeaderClientCertFile, j.LeaderClientKeyFile)
		if err != nil {
			return nil, bad("leader_client_cert_file %s and leader_client_key_file %s: %v", j.LeaderClientCertFile, j.LeaderClientKeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
