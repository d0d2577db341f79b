# invalid: keyraft.hcl:7,27-48: storage "raft": retry_join: leader_ca_cert_file is for an https:// leader_api_addr, not "http://10.0.0.2:8200"
storage "raft" {
  path    = "/data"
  node_id = "n1"
  retry_join {
    leader_api_addr     = "http://10.0.0.2:8200"
    leader_ca_cert_file = "/etc/keyraft/ca.pem"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
