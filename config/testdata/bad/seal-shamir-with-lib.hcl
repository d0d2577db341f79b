# invalid: keyraft.hcl:11,3-6: unsupported argument "lib" in seal "shamir"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "shamir" {
  lib = "/usr/lib/softhsm/libsofthsm2.so"
}
