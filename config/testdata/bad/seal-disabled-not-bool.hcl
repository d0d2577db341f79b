# invalid: keyraft.hcl:11,14-19: disabled must be true or false (or 1 or 0), not "yes"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "shamir" {
  disabled = "yes"
}
