# Vault's listener timeouts, in each form Vault takes, and keyraft's batch
# limits.
storage "raft" {
  path    = "/data"
  node_id = "n"
}

listener "tcp" {
  address                  = "127.0.0.1:8200"
  tls_disable              = true
  http_read_header_timeout = "5s"
  http_read_timeout        = 45
  http_write_timeout       = "1m30s"
  http_idle_timeout        = "600"
  max_batch_items                 = 100
  max_token_batch_items_in_flight = "250"
}

listener "tcp" {
  address            = "127.0.0.1:9300"
  tls_disable        = true
  http_read_timeout  = 0       # 0 keeps the default, as in Vault
  http_write_timeout = "0s"    # no limit, the default
  max_batch_items    = 20000   # the default in-flight limit (20000) still allows a full batch
}
