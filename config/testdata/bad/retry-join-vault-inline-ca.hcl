# invalid: keyraft.hcl:7,5-19: leader_ca_cert (the PEM itself) is not supported; put the PEM in a file and write leader_ca_cert_file = "/path/to/file.pem"
storage "raft" {
  path    = "/data"
  node_id = "n1"
  retry_join {
    leader_api_addr = "https://10.0.0.2:8200"
    leader_ca_cert  = "-----BEGIN CERTIFICATE-----\nMIIB…\n-----END CERTIFICATE-----"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
