# invalid: keyraft.hcl:9,21-32: max_batch_items must be at most 2147483647, not 10000000000
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  max_batch_items = 10000000000
}
