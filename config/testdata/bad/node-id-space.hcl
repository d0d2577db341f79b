# invalid: keyraft.hcl:4,13-23: storage "raft": node_id "node one" has spaces or control characters
storage "raft" {
  path    = "/data"
  node_id = "node one"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
