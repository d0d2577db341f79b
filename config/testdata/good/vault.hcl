# A configuration written for Vault, carried over unchanged.
ui            = true
disable_mlock = true
log_level     = "INFO"
cluster_name  = "prod-kms"

storage "raft" {
  path    = "/opt/vault/data"
  node_id = "vault-1"

  retry_join {
    leader_api_addr         = "https://10.0.0.2:8200"
    leader_ca_cert_file     = "/etc/vault/tls/ca.crt"
    leader_client_cert_file = "/etc/vault/tls/vault.crt"
    leader_client_key_file  = "/etc/vault/tls/vault.key"
    leader_tls_servername   = "vault-2.internal"
  }
  retry_join {
    leader_api_addr = "https://10.0.0.3:8200"
  }
}

listener "tcp" {
  address          = "0.0.0.0:8200"
  cluster_address  = "0.0.0.0:8201"
  tls_cert_file    = "/etc/vault/tls/vault.crt"
  tls_key_file     = "/etc/vault/tls/vault.key"
  max_request_size = 1048576
}

seal "shamir" {}

api_addr         = "https://10.0.0.1:8200"
plugin_directory = "/etc/vault/plugins"
