# invalid: keyraft.hcl:6,1-21: listener block needs one label, its type, as in listener "tcp" { … }
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" "api" {
  address = "127.0.0.1:8200"
}
