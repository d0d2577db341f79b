# invalid: keyraft.hcl:9,22-25: max_request_size must be a whole number of bytes, not 1.5
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address          = "127.0.0.1:8200"
  tls_disable      = true
  max_request_size = 1.5
}
