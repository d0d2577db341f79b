# invalid: keyraft.hcl:6,27-38: storage "raft": cluster_tls_cert_file, cluster_tls_key_file and cluster_tls_ca_file go together; cluster_tls_ca_file is missing
storage "raft" {
  path                  = "/data"
  node_id               = "n1"
  cluster_tls_key_file  = "/node.key"
  cluster_tls_cert_file = "/node.crt"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
