# invalid: keyraft.hcl:7,17-28: listener "tcp": address "127.0.0.1" is not host:port
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1"
  tls_disable = true
}
