# invalid: keyraft.hcl:3,3-7: "path" in storage "raft" is an argument, not a block: write path = …
storage "raft" {
  path {
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
