# invalid: keyraft.hcl: a storage "raft" block is required
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
