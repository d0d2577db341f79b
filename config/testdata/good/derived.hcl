# No advertised addresses: both come from the listener.
storage "raft" {
  path    = "data"
  node_id = 7
}

listener "tcp" {
  address       = "10.1.2.3:9200"
  tls_cert_file = "node.crt"
  tls_key_file  = "node.key"
}
