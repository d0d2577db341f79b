# unsupported: keyraft.hcl:14,15-32: seal "pkcs11": mechanism "CKM_AES_CBC_PAD" is not supported; use CKM_AES_GCM (0x1087) or CKM_RSA_PKCS_OAEP (0x0009)
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
  mechanism = "CKM_AES_CBC_PAD"
}
