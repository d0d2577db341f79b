# invalid: keyraft.hcl:8,3-13: storage "raft": retry_join: leader_api_addr is required
storage "raft" {
  path    = "/data"
  node_id = "n1"
  retry_join {
    leader_api_addr = "https://10.0.0.2:8200"
  }
  retry_join {}
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
