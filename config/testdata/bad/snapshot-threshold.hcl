# invalid: keyraft.hcl:4,24-27: snapshot_threshold must be a whole number of log entries, not 1.5
storage "raft" {
  path               = "/data"
  snapshot_threshold = 1.5
  node_id            = "n"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
