# invalid: keyraft.hcl:8,5-15: unsupported argument "min_qourum" in storage "raft" autopilot; did you mean "min_quorum"?
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot {
    cleanup_dead_servers = true
    min_qourum           = 3
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
