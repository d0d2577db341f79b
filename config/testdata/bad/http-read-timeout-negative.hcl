# invalid: keyraft.hcl:9,23-28: http_read_timeout must not be negative
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  http_read_timeout = "-5s"
}
