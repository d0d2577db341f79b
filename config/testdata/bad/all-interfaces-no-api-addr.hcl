# invalid: keyraft.hcl:7,17-31: api_addr is required when the first listener binds every interface (0.0.0.0:8200)
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true
}
