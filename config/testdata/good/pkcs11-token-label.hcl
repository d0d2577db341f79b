# The token chosen by label, an RSA key, the PIN from the environment.
storage "raft" {
  path    = "/data"
  node_id = "n"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}

seal "pkcs11" {
  lib          = "/usr/lib/softhsm/libsofthsm2.so"
  token_label  = "keyraft"
  key_label    = "keyraft-root-rsa"
  mechanism    = "CKM_RSA_PKCS_OAEP"
  generate_key = false
}
