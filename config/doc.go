// Package config reads the keyraft server configuration file.
//
// The file is HCL in the shape of a HashiCorp Vault server configuration,
// so that an operator's Vault file mostly carries over:
//
//	storage "raft" {
//	  path    = "/var/lib/keyraft"     # this node's data directory (required)
//	  node_id = "kms-1"                # this node's Raft ID (required)
//
//	  retry_join {                     # repeatable: members to join at startup
//	    leader_api_addr = "https://10.0.0.2:8200"
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
//	}
//
//	seal "shamir" {}                   # the default; "pkcs11" is not supported yet
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
// other than "raft", seal other than "shamir", listener other than "tcp"),
// ErrUnsupported.
//
// Files over 1 MiB, or nested more than 100 brackets deep, are refused
// before parsing.
//
// Validate checks a Config built in code the same way (without positions)
// and fills in the defaults. Dev returns the configuration of a
// development server.
package config
