# invalid: keyraft.hcl:6,23-33: storage "raft": retry_join: leader_api_addr "https://" is not a URL like https://10.0.0.5:8200
storage "raft" {
  path    = "/data"
  node_id = "n1"
  retry_join {
    leader_api_addr = "https://"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
