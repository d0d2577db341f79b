# An empty autopilot block is allowed and sets nothing; so is a gossip
# address on port 0 (any free port), which stays 0.
storage "raft" {
  path                 = "/data"
  node_id              = "n"
  gossip_address       = "127.0.0.1:0"
  leader_contact_lease = "1500ms"
  autopilot {}
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
