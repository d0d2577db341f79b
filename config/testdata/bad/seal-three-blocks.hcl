# invalid: keyraft.hcl:18,1-14: a third seal block (the others are on lines 10 and 13); there are two only during a seal migration: the new seal and the old one with disabled = true
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "shamir" {
  disabled = "true"
}
seal "pkcs11" {
  lib       = "/usr/lib/softhsm/libsofthsm2.so"
  slot      = "0"
  key_label = "keyraft-root"
}
seal "pkcs11" {
  lib       = "/usr/lib/softhsm/libsofthsm2.so"
  slot      = "1"
  key_label = "keyraft-root"
}
