# invalid: keyraft.hcl:13,17-26: seal "pkcs11": slot and token_label both choose the token; set only one of them
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "pkcs11" {
  lib         = "/usr/lib/softhsm/libsofthsm2.so"
  slot        = "0"
  token_label = "keyraft"
  key_label   = "keyraft-root"
}
