# invalid: keyraft.hcl:2,1-8: "storage" is a block, not an argument: write storage "raft" { … }
storage = "raft"
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
