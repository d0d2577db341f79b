# invalid: keyraft.hcl:10,12-27: api_addr "10.0.0.1:8200" is not a URL like https://10.0.0.5:8200
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
api_addr = "10.0.0.1:8200"
