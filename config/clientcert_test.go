package config

import "testing"

// TestListenerClientCerts: a TLS listener asks for client certificates
// (cert auth) unless tls_disable_client_certs says otherwise.
func TestListenerClientCerts(t *testing.T) {
	for src, want := range map[string]bool{
		`tls_cert_file = "c.pem"
    tls_key_file = "k.pem"`: false,
		`tls_cert_file = "c.pem"
    tls_key_file = "k.pem"
    tls_disable_client_certs = true`: true,
	} {
		c, err := Parse([]byte(`storage "raft" {
  path = "/var/keyraft"
  node_id = "n1"
}
listener "tcp" {
    address = "127.0.0.1:8200"
    `+src+`
}
`), "c.hcl")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Listeners[0].TLSDisableClientCerts; got != want {
			t.Errorf("%q: TLSDisableClientCerts = %v, want %v", src, got, want)
		}
	}
	if _, err := Parse([]byte(`storage "raft" {
  path = "/var/keyraft"
  node_id = "n1"
}
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = true
  tls_disable_client_certs = "maybe"
}
`), "c.hcl"); err == nil {
		t.Error("a non-boolean tls_disable_client_certs was accepted")
	}
}
