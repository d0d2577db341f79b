# invalid: keyraft.hcl:5,20-36: storage "raft": gossip_address 127.0.0.1:8201 is also a listener's address
storage "raft" {
  path           = "/data"
  node_id        = "n1"
  gossip_address = "127.0.0.1:8201"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
