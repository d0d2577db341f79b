# invalid: keyraft.hcl:12,15-23: slot must be a decimal slot number such as "0", not "slot-1"
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
  slot      = "slot-1"
  key_label = "keyraft-root"
}
