# invalid: keyraft.hcl:10,1-14: seal "pkcs11": key_label is required
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "pkcs11" {
  lib  = "/usr/lib/softhsm/libsofthsm2.so"
  slot = "0"
}
