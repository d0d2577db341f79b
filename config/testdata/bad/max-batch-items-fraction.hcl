# invalid: keyraft.hcl:9,21-25: max_batch_items must be a whole number of items, not 10.5
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  max_batch_items = 10.5
}
