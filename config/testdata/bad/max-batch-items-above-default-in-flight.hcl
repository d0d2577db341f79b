# invalid: keyraft.hcl:9,21-26: listener "tcp" on 127.0.0.1:8200: max_batch_items (30000) is above max_token_batch_items_in_flight (20000, the default), so a full batch could never run; set max_token_batch_items_in_flight too
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  max_batch_items = 30000
}
