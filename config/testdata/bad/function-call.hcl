# invalid: keyraft.hcl:3,13-30: path: function calls not allowed
storage "raft" {
  path    = file("/etc/path")
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
