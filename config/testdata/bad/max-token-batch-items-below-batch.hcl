# invalid: keyraft.hcl:10,37-40: listener "tcp" on 127.0.0.1:8200: max_token_batch_items_in_flight (100) must be at least max_batch_items (500), or a full batch could never run
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  max_batch_items                 = 500
  max_token_batch_items_in_flight = 100
}
