# invalid: keyraft.hcl:7,28-35: cleanup_dead_servers must be true or false (or 1 or 0), not "maybe"
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot {
    cleanup_dead_servers = "maybe"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
