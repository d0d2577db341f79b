# A seal migration from the HSM back to Shamir, the disabled seal last.
storage "raft" {
  path    = "/data"
  node_id = "n"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}

seal "shamir" {}

seal "pkcs11" {
  lib         = "/usr/lib/softhsm/libsofthsm2.so"
  token_label = "keyraft"
  key_label   = "keyraft-root"
  disabled    = true
}
