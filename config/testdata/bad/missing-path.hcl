# invalid: keyraft.hcl:2,1-15: storage "raft": path is required
storage "raft" {
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
