# invalid: keyraft.hcl:10,1-14: seal "pkcs11": lib is required: the path of the PKCS#11 module, such as /usr/lib/softhsm/libsofthsm2.so
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "pkcs11" {
  slot      = "0"
  key_label = "keyraft-root"
}
