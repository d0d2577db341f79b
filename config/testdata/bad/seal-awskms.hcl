# unsupported: keyraft.hcl:10,6-14: seal type "awskms" is not supported; use "shamir" or "pkcs11"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "awskms" {}
