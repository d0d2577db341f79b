# invalid: keyraft.hcl:9,23-27: http_read_timeout must be a duration such as "30s" or a whole number of seconds, not a bool
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  http_read_timeout = true
}
