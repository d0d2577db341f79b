# invalid: keyraft.hcl:8,3-10: argument "address" is set twice; the first one is on line 7
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  address     = "127.0.0.1:8300"
  tls_disable = true
}
