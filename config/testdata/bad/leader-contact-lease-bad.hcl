# invalid: keyraft.hcl:5,26-32: storage "raft": leader_contact_lease "soon" must be a positive duration, such as "2s"
storage "raft" {
  path                 = "/data"
  node_id              = "n1"
  leader_contact_lease = "soon"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
