storage "raft" {
  path    = "/data"
  node_id = "n"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}

seal "pkcs11" {
  lib       = "/usr/lib/softhsm/libsofthsm2.so"
  slot      = "1"
  pin_file  = "/etc/keyraft/hsm.pin"
  key_label = "keyraft-root"
  mechanism = "0x0009"
}
