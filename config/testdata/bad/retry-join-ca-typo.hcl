# invalid: keyraft.hcl:6,5-23: unsupported argument "leader_ca_cert_fil" in storage "raft" retry_join; did you mean "leader_ca_cert_file"?
storage "raft" {
  path    = "/data"
  node_id = "n1"
  retry_join {
    leader_ca_cert_fil = "/etc/keyraft/ca.pem"
    leader_api_addr    = "https://10.0.0.2:8200"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
