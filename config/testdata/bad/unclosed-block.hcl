# invalid: keyraft.hcl:6,16-17: unclosed configuration block
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
