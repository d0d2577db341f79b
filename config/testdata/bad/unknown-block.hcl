# invalid: keyraft.hcl:10,1-10: unsupported block type "telemetry"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
telemetry {
  statsite_address = "127.0.0.1:8125"
}
