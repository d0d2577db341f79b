# invalid: keyraft.hcl:3,13-17: path has no value
storage "raft" {
  path    = null
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
