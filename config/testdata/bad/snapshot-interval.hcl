# invalid: keyraft.hcl:4,23-29: storage "raft": snapshot_interval "soon" must be a duration of at least 1s, such as "30s"
storage "raft" {
  path              = "/data"
  snapshot_interval = "soon"
  node_id           = "n"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
