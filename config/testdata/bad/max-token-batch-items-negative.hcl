# invalid: keyraft.hcl:9,37-43: max_token_batch_items_in_flight must not be negative
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  max_token_batch_items_in_flight = "-100"
}
