# invalid: keyraft.hcl:15,1-14: disabled seal "pkcs11": key_label is required
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
  key_label = "keyraft-root"
}
seal "pkcs11" {
  lib      = "/usr/lib/old-hsm/libpkcs11.so"
  slot     = "0"
  disabled = "true"
}
