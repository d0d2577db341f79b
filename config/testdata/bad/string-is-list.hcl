# invalid: keyraft.hcl:3,13-22: path must be a string, not tuple
storage "raft" {
  path    = ["/data"]
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
