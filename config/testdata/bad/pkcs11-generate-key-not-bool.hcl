# invalid: keyraft.hcl:14,18-23: generate_key must be true or false (or 1 or 0), not "yes"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "pkcs11" {
  lib          = "/usr/lib/softhsm/libsofthsm2.so"
  slot         = "0"
  key_label    = "keyraft-root"
  generate_key = "yes"
}
