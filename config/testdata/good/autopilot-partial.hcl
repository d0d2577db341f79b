# An autopilot block that sets one thing; the others keep the server's
# defaults. No gossip address: the server derives it.
storage "raft" {
  path    = "/data"
  node_id = "n"

  autopilot {
    cleanup_dead_servers = "true"
  }
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
