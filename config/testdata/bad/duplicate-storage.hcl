# invalid: keyraft.hcl:10,1-15: duplicate storage block; the first one is on line 2
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
