# invalid: keyraft.hcl:10,13-22: log_level "verbose" is not one of trace, debug, info, warn, error
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
log_level = "verbose"
