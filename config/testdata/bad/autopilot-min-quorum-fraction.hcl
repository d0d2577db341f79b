# invalid: keyraft.hcl:7,18-21: min_quorum must be a whole number of servers, not 2.5
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot {
    min_quorum = 2.5
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
