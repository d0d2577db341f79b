# invalid: keyraft.hcl:9,23-44: storage "raft": retry_join: leader_api_addr "https://10.0.0.3/v1" is not a URL like https://10.0.0.5:8200
storage "raft" {
  path    = "/data"
  node_id = "n1"
  retry_join {
    leader_api_addr = "https://10.0.0.2:8200"
  }
  retry_join {
    leader_api_addr = "https://10.0.0.3/v1"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
