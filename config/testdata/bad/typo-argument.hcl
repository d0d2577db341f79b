# invalid: keyraft.hcl:7,3-9: unsupported argument "adress" in listener "tcp"; did you mean "address"?
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  adress      = "127.0.0.1:8200"
  tls_disable = true
}
