# invalid: keyraft.hcl:11,3-16: unsupported argument "secret_shares" in seal "shamir"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "shamir" {
  secret_shares = 5
}
