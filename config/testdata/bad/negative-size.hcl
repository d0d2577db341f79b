# invalid: keyraft.hcl:9,22-24: max_request_size must not be negative
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address          = "127.0.0.1:8200"
  tls_disable      = true
  max_request_size = -1
}
