# Vault's numeric mechanism, a numeric slot.
storage "raft" {
  path    = "/data"
  node_id = "n"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}

seal "pkcs11" {
  lib       = "/opt/hsm/lib/libcknfast.so"
  slot      = 0
  key_label = "keyraft-root"
  mechanism = "0x1087"
}
