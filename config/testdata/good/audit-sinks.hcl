storage "raft" {
  path    = "/data"
  node_id = "n"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
audit "file" {
  path      = "/var/log/keyraft/audit.log"
  max_bytes = 104857600
  keep      = 10
}
audit "socket" {
  address = "127.0.0.1:9090"
}
audit "syslog" {}
