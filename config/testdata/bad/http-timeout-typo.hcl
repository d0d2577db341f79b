# invalid: keyraft.hcl:9,3-19: unsupported argument "http_read_timout" in listener "tcp"; did you mean "http_read_timeout"?
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  http_read_timout = "30s"
}
