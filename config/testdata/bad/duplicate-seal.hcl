# invalid: keyraft.hcl:11,1-14: duplicate seal block; the first one is on line 10
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "shamir" {}
seal "shamir" {}
