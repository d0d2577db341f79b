# invalid: keyraft.hcl:9,3-12: duplicate autopilot block; the first one is on line 6
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot {
    min_quorum = 3
  }
  autopilot {
    min_quorum = 5
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
