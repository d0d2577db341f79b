# invalid: keyraft.hcl:7,5-24: unsupported argument "leader_ca_cert_file" in storage "raft" retry_join
storage "raft" {
  path    = "/data"
  node_id = "n1"
  retry_join {
    leader_api_addr     = "https://10.0.0.2:8200"
    leader_ca_cert_file = "/ca.pem"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
