# invalid: keyraft.hcl:10,1-13: audit "file": path is required
storage "raft" {
  path    = "/data"
  node_id = "n"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
audit "file" {}
