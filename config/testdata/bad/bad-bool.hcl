# invalid: keyraft.hcl:8,17-29: tls_disable must be true or false (or 1 or 0), not "yes please"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = "yes please"
}
