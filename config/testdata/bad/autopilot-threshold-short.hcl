# invalid: keyraft.hcl:7,42-49: storage "raft": autopilot: dead_server_last_contact_threshold "500ms" must be a duration of at least 1s, such as "24h"
storage "raft" {
  path    = "/data"
  node_id = "n1"

  autopilot {
    dead_server_last_contact_threshold = "500ms"
  }
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
