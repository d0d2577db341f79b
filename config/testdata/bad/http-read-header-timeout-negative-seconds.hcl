# invalid: keyraft.hcl:9,30-33: http_read_header_timeout must not be negative
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  http_read_header_timeout = -10
}
