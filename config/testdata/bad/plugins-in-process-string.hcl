# invalid: keyraft.hcl:2,22-27: plugins_in_process must be true or false (or 1 or 0), not "yes"
plugins_in_process = "yes"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
