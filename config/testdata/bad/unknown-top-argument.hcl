# invalid: keyraft.hcl:10,1-18: unsupported argument "default_lease_ttl"
storage "raft" {
  path    = "/data"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
default_lease_ttl = "768h"
