# invalid: keyraft.hcl:7,5-22: unsupported argument "max_trailing_logs" in storage "raft" autopilot
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot {
    max_trailing_logs = 1000
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
