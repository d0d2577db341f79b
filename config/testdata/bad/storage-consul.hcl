# unsupported: keyraft.hcl:2,9-17: storage type "consul" is not supported; only "raft" is
storage "consul" {
  address = "127.0.0.1:8500"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
