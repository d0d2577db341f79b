# invalid: keyraft.hcl:9,23-37: http_read_timeout is too long: at most 9223372036 seconds
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  http_read_timeout = 99999999999999
}
