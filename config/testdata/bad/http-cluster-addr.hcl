# invalid: keyraft.hcl:10,16-38: cluster_addr "http://10.0.0.1:8201" must start with https:// (cluster traffic is always TLS)
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
cluster_addr = "http://10.0.0.1:8201"
