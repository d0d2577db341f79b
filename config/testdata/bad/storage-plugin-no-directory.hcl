# invalid: keyraft.hcl:5,13-22: storage "raft": plugin "mystore" is not built in, so plugin_directory must be set
storage "raft" {
  path    = "/data"
  node_id = "n1"
  plugin  = "mystore"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
