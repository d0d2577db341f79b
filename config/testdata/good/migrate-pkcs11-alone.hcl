# As in Vault, a disabled seal alone migrates to Shamir.
storage "raft" {
  path    = "/data"
  node_id = "n"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}

seal "pkcs11" {
  disabled    = "true"
  lib         = "/usr/lib/softhsm/libsofthsm2.so"
  token_label = "keyraft"
  key_label   = "keyraft-root"
}
