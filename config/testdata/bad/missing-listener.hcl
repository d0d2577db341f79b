# invalid: keyraft.hcl: at least one listener "tcp" block is required
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
