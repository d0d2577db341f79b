// Package config reads the keyraft server configuration file.
//
// The file is HCL in the shape of a HashiCorp Vault server configuration,
// so that an operator's Vault file mostly carries over:
//
//	storage "raft" {
//	  path    = "/var/lib/keyraft"     # this node's data directory (required)
//	  node_id = "kms-1"                # this node's Raft ID (required)
//
//	  snapshot_threshold = 8192        # log entries between snapshots
//	  snapshot_interval  = "2m"        # how often to check; at least 1s
//
//	  gossip_address           = "0.0.0.0:8202"   # default: cluster port + 1
//	  gossip_advertise_address = "10.0.0.1:8202"  # told to peers
//	  leader_contact_lease     = "2s"  # serve this long without the leader
//
//	  cluster_tls_cert_file = "/etc/keyraft/tls/cluster.crt"  # all three or none:
//	  cluster_tls_key_file  = "/etc/keyraft/tls/cluster.key"  # the operator's own
//	  cluster_tls_ca_file   = "/etc/keyraft/tls/ca.crt"       # cluster-port PKI
//
//	  retry_join {                     # repeatable: members to join at startup
//	    leader_api_addr         = "https://10.0.0.2:8200"
//	    leader_ca_cert_file     = "/etc/keyraft/ca.pem"      # optional, and…
//	    leader_client_cert_file = "/etc/keyraft/api.pem"     # …only for https
//	    leader_client_key_file  = "/etc/keyraft/api-key.pem"
//	    leader_tls_servername   = "node-2.example"
//	  }
//	  retry_join {
//	    leader_api_addr = "https://10.0.0.3:8200"
//	  }
//
//	  autopilot {                      # at most one
//	    cleanup_dead_servers               = true   # remove voters dead for…
//	    dead_server_last_contact_threshold = "24h"  # …this long; at least 1s
//	    min_quorum                         = 3      # never below this many voters
//	    server_stabilization_time          = "10s"  # healthy this long, then promoted
//	  }
//	}
//
//	listener "tcp" {                   # at least one
//	  address          = "0.0.0.0:8200"   # default 127.0.0.1:8200
//	  cluster_address  = "0.0.0.0:8201"   # default: port of address + 1
//	  tls_cert_file    = "/etc/keyraft/tls/node.crt"
//	  tls_key_file     = "/etc/keyraft/tls/node.key"
//	  tls_disable      = false            # plain HTTP; then no cert or key needed
//	  max_request_size = 33554432         # bytes; 0 or absent = 32 MiB
//
//	  http_read_header_timeout = "10s"    # the request's headers; default 10s
//	  http_read_timeout        = "30s"    # the whole request, body included; default 30s
//	  http_write_timeout       = 0        # writing the answer; 0 or absent = no limit
//	  http_idle_timeout        = "5m"     # an idle keep-alive connection; default 5m
//	  max_batch_items                 = 10000  # batch_input items per request
//	  max_token_batch_items_in_flight = 20000  # items one token may have in flight
//	}
//
//	seal "shamir" {}                   # the default when there is no seal block
//
//	seal "pkcs11" {                    # or an HSM, as Vault's pkcs11 seal
//	  lib          = "/usr/lib/softhsm/libsofthsm2.so"  # the PKCS#11 module (required)
//	  slot         = "0"               # the token: slot or token_label, not both
//	  token_label  = "keyraft"
//	  pin          = "1234"            # or pin_file, or KEYRAFT_HSM_PIN in the environment
//	  pin_file     = "/run/secrets/hsm-pin"
//	  key_label    = "keyraft-root"    # the wrapping key (required)
//	  mechanism    = "CKM_AES_GCM"     # or "CKM_RSA_PKCS_OAEP"
//	  generate_key = "true"            # create the key if the token has none
//	  disabled     = "true"            # only for the old seal of a seal migration
//	}
//
//	api_addr         = "https://10.0.0.1:8200"  # advertised to clients and peers
//	cluster_addr     = "https://10.0.0.1:8201"  # advertised to peers; always https
//	plugin_directory = "/usr/lib/keyraft/plugins"
//	log_level        = "info"          # trace, debug, info, warn, error
//	cluster_name     = "prod-kms"
//	disable_mlock    = true            # accepted, no effect
//	ui               = true            # accepted, no effect
//
// Booleans may be written as Vault configurations write them: true, false,
// 1, 0, "true", "false", "1" or "0". Sizes may be numbers or strings of
// digits. Variables, functions and JSON files are not supported.
//
// # Derived addresses
//
// When api_addr is absent it is derived from the first listener:
// http://<address> with tls_disable, https://<address> otherwise. That needs
// a specific host: a first listener on 0.0.0.0 or [::] requires api_addr.
// When cluster_addr is absent it is https://<cluster_address> of the first
// listener, with the host of api_addr if the listener binds every interface.
// A listener on port 0 (any free port) keeps port 0 for its cluster address
// and in the derived URLs: the advertised ports are then the server's to
// fill in once it has bound them.
//
// # Cluster settings
//
// Every setting of storage "raft" but path and node_id is optional, and an
// absent one keeps the server's default; so does each absent setting of an
// autopilot block. Durations are Go durations ("1500ms", "2s", "24h"):
// snapshot_interval and dead_server_last_contact_threshold are at least 1s,
// leader_contact_lease is positive, server_stabilization_time is 0s or more.
// min_quorum is at least 1.
//
// gossip_address is the host:port gossip listens on, UDP and TCP. It must
// not be a listener's address. When absent the server uses the host of the
// cluster port and the next port up (8202 next to 8201).
// gossip_advertise_address is what peers are told: host:port with a
// specific host and port.
//
// Each retry_join block names a cluster member by the URL of its API
// (http or https, with a host and nothing after it); at startup a node not
// yet in a cluster asks them for admission. For an https member it takes
// Vault's TLS settings: the CA to trust instead of the system's roots, a
// client certificate and key to present (both or neither), and the name to
// check in the member's certificate. Parse does not read those files;
// RetryJoin.TLSConfig does, and the server calls it at start.
//
// The cluster port normally uses certificates issued by the cluster's own
// CA. cluster_tls_cert_file, cluster_tls_key_file and cluster_tls_ca_file
// replace them with the operator's PEM files; Parse checks that all three
// are given, the server reads them.
//
// # Listener limits
//
// The timeouts are Vault's listener settings, in Vault's forms: a Go
// duration ("30s", "1m30s") or a whole number of seconds (30 or "30"). An
// absent or 0 read, read-header or idle timeout keeps its default (10s
// for the headers, 30s for the whole request, 5m idle), as in Vault; an
// absent or 0 http_write_timeout sets no limit. They bound how long a
// client that has not yet sent its whole request (and so has not yet
// been authenticated) can hold a connection and its buffers.
//
// max_batch_items is the most batch_input items one request may carry
// (default 10000); a larger batch is refused with 400.
// max_token_batch_items_in_flight is how many batch items the requests
// of one token may have in flight at once (a request without batch_input
// counts one; default 20000), so that one caller cannot starve the
// others. It must be at least max_batch_items. Negative values of any of
// these are errors.
//
// # Seals
//
// The seal protects the root key. Without a seal block it is "shamir":
// unseal keys split among operators. A seal "pkcs11" block has a hardware
// security module (or SoftHSM) wrap the root key instead:
//
//   - lib is the path of the vendor's PKCS#11 module; required.
//   - slot or token_label chooses the token; exactly one of them. slot is a
//     decimal number, written as a string as Vault does ("0") or as a
//     number.
//   - key_label is the label of the wrapping key in the token; required.
//   - mechanism is "CKM_AES_GCM" (the default, an AES key) or
//     "CKM_RSA_PKCS_OAEP" (an RSA key pair), or Vault's numeric forms
//     "0x1087" and "0x0009"; Validate stores the name. Other mechanisms
//     are refused with ErrUnsupported.
//   - generate_key = true lets the server create the key when the token
//     has none with key_label; default false.
//   - The user PIN comes from, in this order, pin, the file named by
//     pin_file (less one trailing newline), the environment variables
//     KEYRAFT_HSM_PIN and VAULT_HSM_PIN; see PKCS11Seal.ResolvePIN. pin and
//     pin_file are not both allowed. pin must be a quoted string. Parse
//     does not read pin_file or the environment, its errors never quote a
//     pin, and printing the configuration shows "(redacted)" for it.
//
// A seal block of either type may say disabled = true (or "true"), as in
// Vault: it is then the old seal of a seal migration, Config.OldSeal, and
// the other block, or Shamir when there is none, is the new one,
// Config.Seal. So there are at most two seal blocks, one of them disabled,
// and a migration is not from Shamir to Shamir.
//
// # Mistakes
//
// Anything the file says that keyraft does not understand is an error: an
// unknown block or argument, a misspelled one, a block given twice, a
// value of the wrong type. Every error is a single line that starts with
// the file and the position, as in
//
//	keyraft.hcl:7,3-9: unsupported argument "adress" in listener "tcp"; did you mean "address"?
//
// and wraps ErrInvalid or, for Vault features keyraft does not have (storage
// other than "raft", seal other than "shamir" and "pkcs11", PKCS#11
// mechanisms other than AES-GCM and RSA-OAEP, listener other than "tcp"),
// ErrUnsupported.
//
// Files over 1 MiB, or nested more than 100 brackets deep, are refused
// before parsing.
//
// Validate checks a Config built in code the same way (without positions)
// and fills in the defaults. Dev returns the configuration of a
// development server.
package config
