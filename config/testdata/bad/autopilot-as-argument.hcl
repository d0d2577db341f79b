# invalid: keyraft.hcl:5,3-12: "autopilot" in storage "raft" is a block, not an argument: write autopilot { … }
storage "raft" {
  path      = "/data"
  node_id   = "n1"
  autopilot = { min_quorum = 3 }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
