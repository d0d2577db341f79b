# invalid: keyraft.hcl:7,17-33: listener "tcp": address "127.0.0.1:http" has an invalid port
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:http"
  tls_disable = true
}
