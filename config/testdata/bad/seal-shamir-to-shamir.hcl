# invalid: keyraft.hcl:10,1-14: disabled seal "shamir": migrating from shamir to shamir changes nothing; remove the disabled seal block
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "shamir" {
  disabled = true
}
