# invalid: keyraft.hcl:16,1-14: two disabled seal blocks; the other is on line 10, and only the old seal of a migration is disabled
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "pkcs11" {
  lib       = "/usr/lib/softhsm/libsofthsm2.so"
  slot      = "0"
  key_label = "keyraft-root"
  disabled  = true
}
seal "shamir" {
  disabled = "true"
}
