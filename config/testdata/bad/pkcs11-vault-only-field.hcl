# invalid: keyraft.hcl:14,3-17: unsupported argument "hmac_key_label" in seal "pkcs11"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "pkcs11" {
  lib            = "/usr/lib/softhsm/libsofthsm2.so"
  slot           = "0"
  key_label      = "keyraft-root"
  hmac_key_label = "keyraft-hmac"
}
