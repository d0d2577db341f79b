# invalid: keyraft.hcl:13,15-34: pin must be a string in quotes, without variables, functions or templates (write $${ and %%{ for ${ and %{)
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
  pin       = "12${secretpart}34"
  key_label = "keyraft-root"
}
