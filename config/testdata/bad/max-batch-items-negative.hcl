# invalid: keyraft.hcl:9,21-23: max_batch_items must not be negative
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  max_batch_items = -1
}
