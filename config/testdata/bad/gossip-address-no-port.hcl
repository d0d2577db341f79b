# invalid: keyraft.hcl:5,20-31: storage "raft": gossip_address "127.0.0.1" is not host:port
storage "raft" {
  path           = "/data"
  node_id        = "n1"
  gossip_address = "127.0.0.1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
