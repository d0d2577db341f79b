# invalid: keyraft.hcl:2,1-8: storage block needs one label, its type, as in storage "raft" { … }
storage {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
