# invalid: keyraft.hcl:7,31-53: storage "raft": retry_join: leader_client_cert_file and leader_client_key_file go together; leader_client_key_file is missing
storage "raft" {
  path    = "/data"
  node_id = "n1"
  retry_join {
    leader_api_addr         = "https://10.0.0.2:8200"
    leader_client_cert_file = "/etc/keyraft/api.pem"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
