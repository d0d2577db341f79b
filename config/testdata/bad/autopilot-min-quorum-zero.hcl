# invalid: keyraft.hcl:7,18-19: min_quorum must be between 1 and 65536, not 0
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot {
    min_quorum = 0
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
