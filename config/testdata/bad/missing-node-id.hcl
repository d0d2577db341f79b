# invalid: keyraft.hcl:2,1-15: storage "raft": node_id is required
storage "raft" {
  path = "/data"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
