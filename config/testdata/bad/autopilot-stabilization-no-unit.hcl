# invalid: keyraft.hcl:7,33-37: storage "raft": autopilot: server_stabilization_time "10" must be a duration of at least 0s, such as "10s"
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot {
    server_stabilization_time = "10"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
