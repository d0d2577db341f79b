# invalid: keyraft.hcl:3,1-15: storage "raft": plugin "mystore" needs plugin_sha256 (the sha256sum of the file)
plugin_directory = "/usr/lib/keyraft/plugins"
storage "raft" {
  path    = "/data"
  node_id = "n1"
  plugin  = "mystore"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
