# invalid: keyraft.hcl:5,3-25: unsupported argument "performance_multiplier" in storage "raft"
storage "raft" {
  path    = "/data"
  node_id = "n1"
  performance_multiplier = 1
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
