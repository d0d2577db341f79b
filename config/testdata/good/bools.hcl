# Vault configs spell booleans many ways.
disable_mlock = "1"
ui            = "false"

storage "raft" {
  path    = "/data"
  node_id = "n"
}

listener "tcp" {
  address          = "127.0.0.1:8200"
  tls_disable      = "true"
  max_request_size = "0"
}

listener "tcp" {
  address     = "127.0.0.1:9300"
  tls_disable = 1
}

cluster_addr = "https://kms-1.internal:8201"
