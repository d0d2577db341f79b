# unsupported: keyraft.hcl:6,10-16: listener type "unix" is not supported; only "tcp" is
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "unix" {
  address = "/run/keyraft.sock"
}
