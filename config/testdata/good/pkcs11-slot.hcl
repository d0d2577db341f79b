# Vault's pkcs11 seal as Vault's documentation writes it: strings throughout.
storage "raft" {
  path    = "/data"
  node_id = "n"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}

seal "pkcs11" {
  lib          = "/usr/lib/softhsm/libsofthsm2.so"
  slot         = "1838735785"
  pin          = "1234-secret"
  key_label    = "keyraft-root"
  generate_key = "true"
}
