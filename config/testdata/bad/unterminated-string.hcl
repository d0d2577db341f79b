# invalid: keyraft.hcl:3,19-4,1: invalid multi-line string
storage "raft" {
  path    = "/data
  node_id = "n1"
}
