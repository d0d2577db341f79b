# invalid: keyraft.hcl:11,1-14: two active seal blocks; the other is on line 10: for a seal migration, set disabled = true in the old one
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
