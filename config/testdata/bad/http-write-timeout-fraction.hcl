# invalid: keyraft.hcl:9,24-27: http_write_timeout must be a duration such as "30s" or a whole number of seconds, not 1.5
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  http_write_timeout = 1.5
}
