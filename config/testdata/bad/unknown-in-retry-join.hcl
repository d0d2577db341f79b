# invalid: keyraft.hcl:7,5-14: unsupported argument "auto_join" in storage "raft" retry_join
storage "raft" {
  path    = "/data"
  node_id = "n1"
  retry_join {
    leader_api_addr = "https://10.0.0.2:8200"
    auto_join       = "provider=aws tag_key=keyraft"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
