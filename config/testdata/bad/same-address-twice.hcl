# invalid: keyraft.hcl:10,1-15: address 127.0.0.1:8200 is used by two listeners
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
