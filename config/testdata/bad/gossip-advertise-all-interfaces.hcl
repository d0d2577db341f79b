# invalid: keyraft.hcl:6,30-44: storage "raft": gossip_advertise_address "0.0.0.0:8202" names no specific host
storage "raft" {
  path                     = "/data"
  node_id                  = "n1"
  gossip_address           = "0.0.0.0:8202"
  gossip_advertise_address = "0.0.0.0:8202"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
