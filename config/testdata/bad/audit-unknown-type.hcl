# unsupported: keyraft.hcl:10,7-14: audit type "kafka" is not supported; use file, syslog or socket
storage "raft" {
  path    = "/data"
  node_id = "n"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
audit "kafka" {}
