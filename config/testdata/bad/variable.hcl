# invalid: keyraft.hcl:3,13-16: path: variables not allowed
storage "raft" {
  path    = var.path
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
