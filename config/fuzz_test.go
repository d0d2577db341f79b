package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that every error is
// one line wrapping a sentinel, and that a parsed config is valid and
// stable under Validate.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"good", "bad"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.hcl"))
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Add([]byte("listener \"tcp\" { tls_disable = 1e999999 }"))
	f.Add([]byte("storage \"raft\" { path = \"${x}\" }"))
	f.Add([]byte("a = " + strings.Repeat("[", 200)))
	f.Add([]byte(`storage "raft" {
  path                     = "/d"
  node_id                  = "n"
  gossip_address           = "127.0.0.1:8202"
  gossip_advertise_address = "10.0.0.1:8202"
  leader_contact_lease     = "2s"
  cluster_tls_cert_file    = "c.crt"
  cluster_tls_key_file     = "c.key"
  cluster_tls_ca_file      = "ca.crt"
  retry_join { leader_api_addr = "https://10.0.0.2:8200" }
  retry_join { leader_api_addr = "http://kms-3:8200" }
  autopilot {
    cleanup_dead_servers               = true
    dead_server_last_contact_threshold = "24h"
    min_quorum                         = 3
    server_stabilization_time          = "10s"
  }
}
listener "tcp" { tls_disable = true }
`))
	f.Add([]byte(`storage "raft" {
  path    = "/d"
  node_id = "n"
}
listener "tcp" { tls_disable = true }
seal "pkcs11" {
  disabled     = "true"
  lib          = "/usr/lib/softhsm/libsofthsm2.so"
  slot         = "18446744073709551615"
  pin          = <<EOT
12$${34}%%{56}
EOT
  key_label    = "old"
  mechanism    = "0x0009"
}
seal "pkcs11" {
  lib          = "/usr/lib/softhsm/libsofthsm2.so"
  token_label  = "t"
  pin_file     = "/run/pin"
  key_label    = "new"
  mechanism    = "4231"
  generate_key = "false"
}
`))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src, "keyraft.hcl")
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error has several lines: %q", err)
			}
			if !strings.HasPrefix(err.Error(), "keyraft.hcl") {
				t.Fatalf("error does not name the file: %q", err)
			}
			return
		}
		again := clone(c)
		if err := again.Validate(); err != nil {
			t.Fatalf("Validate after Parse: %v", err)
		}
		if !reflect.DeepEqual(again, *c) {
			t.Fatalf("Validate changed a parsed config")
		}
	})
}
