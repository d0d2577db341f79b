# invalid: keyraft.hcl:13,3-12: unsupported argument "key_lable" in seal "pkcs11"; did you mean "key_label"?
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
  key_lable = "keyraft-root"
}
