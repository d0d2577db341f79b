# A member of a three-node cluster that sets every storage "raft" option.
storage "raft" {
  path                     = "/var/lib/keyraft"
  node_id                  = "kms-2"
  gossip_address           = "0.0.0.0:8202"
  gossip_advertise_address = "10.0.0.2:8202"
  leader_contact_lease     = "2s"

  cluster_tls_cert_file = "/etc/keyraft/tls/cluster.crt"
  cluster_tls_key_file  = "/etc/keyraft/tls/cluster.key"
  cluster_tls_ca_file   = "/etc/keyraft/tls/cluster-ca.crt"

  retry_join {
    leader_api_addr = "https://10.0.0.1:8200"
  }
  retry_join {
    leader_api_addr = "https://kms-3.internal:8200/"
  }
  retry_join {
    leader_api_addr = "http://[fd00::4]"
  }

  autopilot {
    cleanup_dead_servers               = false
    dead_server_last_contact_threshold = "24h"
    min_quorum                         = 3
    server_stabilization_time          = "10s"
  }
}

listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/keyraft/tls/node.crt"
  tls_key_file  = "/etc/keyraft/tls/node.key"
}

api_addr = "https://10.0.0.2:8200"
