# invalid: keyraft.hcl:7,17-34: listener "tcp" on 127.0.0.1:65535: port+1 cannot be the cluster port; set cluster_address
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:65535"
  tls_disable = true
}
