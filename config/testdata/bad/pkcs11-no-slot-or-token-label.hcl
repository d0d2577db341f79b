# invalid: keyraft.hcl:10,1-14: seal "pkcs11": slot or token_label is required to choose the token
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
  key_label = "keyraft-root"
}
