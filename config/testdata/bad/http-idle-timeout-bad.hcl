# invalid: keyraft.hcl:9,23-37: http_idle_timeout must be a duration such as "30s" or a whole number of seconds, not "five minutes"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  http_idle_timeout = "five minutes"
}
