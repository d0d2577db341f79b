# invalid: keyraft.hcl:6,23-44: storage "raft": retry_join: leader_api_addr "ftp://10.0.0.2:8200" must start with http:// or https://
storage "raft" {
  path    = "/data"
  node_id = "n1"
  retry_join {
    leader_api_addr = "ftp://10.0.0.2:8200"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
