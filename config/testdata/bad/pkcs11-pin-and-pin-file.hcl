# invalid: keyraft.hcl:14,15-37: seal "pkcs11": pin and pin_file both give the PIN; set only one of them
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
  pin       = "1234-secret"
  pin_file  = "/etc/keyraft/hsm.pin"
  key_label = "keyraft-root"
}
