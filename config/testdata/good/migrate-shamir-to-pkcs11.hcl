# A seal migration from Shamir to the HSM: the old seal is disabled.
storage "raft" {
  path    = "/data"
  node_id = "n"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}

seal "shamir" {
  disabled = "true"
}

seal "pkcs11" {
  lib         = "/usr/lib/softhsm/libsofthsm2.so"
  token_label = "keyraft"
  key_label   = "keyraft-root"
}
