# invalid: keyraft.hcl:10,1-22: seal block needs one label, its type, as in seal "shamir" { … }
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "pkcs11" "extra" {
  lib = "/usr/lib/softhsm/libsofthsm2.so"
}
