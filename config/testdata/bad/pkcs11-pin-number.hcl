# invalid: keyraft.hcl:13,15-20: pin must be a string in quotes, not number
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
  pin       = 12345
  key_label = "keyraft-root"
}
