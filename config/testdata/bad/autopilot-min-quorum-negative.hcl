# invalid: keyraft.hcl:7,18-20: min_quorum must not be negative
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot {
    min_quorum = -1
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
