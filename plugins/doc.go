// Package plugins holds the contracts between a keyraft node and its
// backends. A backend is anything that can be swapped without touching the
// server: the storage that holds the state machine's records (Storage,
// here) and the crypto backends that hold transit keys (sdk.CryptoBackend).
//
// The rest of the plugin work lives in the subpackages: plugins/host runs
// a backend as a separate process through go-plugin (the binary's SHA-256
// pinned, mutual TLS per launch, every call bounded by a timeout, the
// process restarted with backoff when it dies); plugins/sdk is what a
// plugin binary imports and the gRPC glue both sides share; plugins/catalog
// resolves a key's backend through the replicated plugin catalog and
// starts it with the host; plugins/conformance checks an implementation;
// bolt, soft and pkcs11 are the backends keyraft ships (cmd/keyraft-plugin-*
// serves each as a plugin binary).
//
// The contracts are deliberately small so that they can be carried over
// gRPC to a plugin process unchanged: plain byte slices in, plain byte
// slices out, no callbacks into the node.
package plugins
