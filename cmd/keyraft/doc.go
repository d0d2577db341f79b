// Command keyraft is the keyraft server and its command-line client.
//
//	keyraft server -config=keyraft.hcl        run a node
//	keyraft status                            is it initialized? sealed?
//	keyraft operator init                     create the root key; print the unseal keys
//	keyraft operator unseal                   give one unseal key (read from stdin)
//	keyraft operator seal                     forget the root key until unsealed again
//	keyraft keys create -type=ed25519 NAME    create a key
//	keyraft keys list | read | rotate | config | delete
//	keyraft encrypt KEY < plain > cipher      encrypt stdin; print vault:v1:…
//	keyraft decrypt KEY < cipher > plain      decrypt; write the raw bytes
//	keyraft sign KEY < data                   print the signature
//	keyraft verify -signature=SIG KEY < data  print "valid", or fail
//
// The client commands speak the HashiCorp Vault HTTP API (sys and transit),
// so they work against a Vault server too. They find the server and the
// token in KEYRAFT_ADDR and KEYRAFT_TOKEN (else VAULT_ADDR and VAULT_TOKEN),
// or in the -address and -token flags, and print a Key/Value table or, with
// -format=json, one JSON object: the data of the server's answer (the
// "data" of Vault's envelope, the "auth" of token create and renew, the
// whole answer of sys calls without an envelope such as status), nothing
// for a change whose answer has no data, and one object per line for the
// audit event listings. Warnings of the server go to stderr as "warning:"
// lines in either format. Long transfers (snapshot save and restore, audit
// export) show their progress on stderr when it is a terminal.
//
// Flags are Go-style, single dash, and come before the arguments:
// 'keyraft keys create -derived NAME'. 'keyraft help COMMAND' or
// 'keyraft COMMAND -h' prints a command's manual.
//
// A failure prints one line, "error: …", often followed by one line
// "hint: …" that says what to do, and exits 1. A mistake in the command
// line exits 2 and its hint shows the usage. 'keyraft status' exits 2 when
// the server is sealed, as 'vault status' does.
//
// All of the program is in run, which takes the arguments, the standard
// streams and the environment as values, so that tests reach every path
// without building the binary.
package main
