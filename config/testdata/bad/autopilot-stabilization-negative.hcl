# invalid: keyraft.hcl:7,33-39: storage "raft": autopilot: server_stabilization_time "-10s" must be a duration of at least 0s, such as "10s"
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot {
    server_stabilization_time = "-10s"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
