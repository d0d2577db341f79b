# invalid: keyraft.hcl:6,3-19: autopilot block takes no labels
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot "raft" {
    min_quorum = 3
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
