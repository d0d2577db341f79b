# invalid: keyraft.hcl:6,1-15: listener "tcp" on 127.0.0.1:8200: tls_cert_file and tls_key_file are required unless tls_disable is set
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address = "127.0.0.1:8200"
}
