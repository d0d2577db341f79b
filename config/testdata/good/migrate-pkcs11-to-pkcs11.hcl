# A seal migration from one HSM key to another.
storage "raft" {
  path    = "/data"
  node_id = "n"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}

seal "pkcs11" {
  lib       = "/usr/lib/old-hsm/libpkcs11.so"
  slot      = "3"
  pin       = "old-pin"
  key_label = "keyraft-root"
  disabled  = 1
}

seal "pkcs11" {
  lib          = "/usr/lib/softhsm/libsofthsm2.so"
  slot         = "0"
  pin_file     = "/run/secrets/hsm-pin"
  key_label    = "keyraft-root-2"
  mechanism    = "ckm_aes_gcm"
  generate_key = 1
}
