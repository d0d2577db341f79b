storage "raft" {
  path    = "/var/lib/keyraft"
  node_id = "node-1"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
