// Package transit is the key engine behind /v1/transit/: named keys with
// versions (Policy) and the Vault transit operations on them — create,
// read, list, config, rotate, trim, delete, export, backup/restore,
// encrypt, decrypt, rewrap, datakey, sign, verify, hmac, random, hash —
// with batch_input and Vault's status rules.
//
// Keys are read from the node's local state (Store) and kept unwrapped in
// memory per record revision, zeroed on Purge (when the node seals). A
// change is a read-modify-write committed with the revision it was made
// from, retried on conflict, so concurrent changes never lose an update.
//
// Each operation is written once, over the key's KeyCrypto (crypto.go):
// package keys in this process, or a crypto backend plugin (backend.go).
// What only some backends can do (derivation, sign options, HMAC
// algorithms, separate HMAC keys, export, import) are optional interfaces
// an operation checks by type assertion; a key without one is refused
// that use with a 400.
//
// Request parameters arrive as Fields, decoded the way Vault does (a
// number or bool may come as a string). Errors meant for the caller are
// *Error with the HTTP status; they never contain key material.
// Plaintext backup lives apart, in backup.go, gated by both exportable and
// allow_plaintext_backup; Vault's and OpenBao's backup format is read in
// vaultbackup.go and written in vaultexport.go.
//
// The key lifecycle lives in lifecycle*.go: states and the one function
// that decides what each allows (Decide), the history, scheduled work the
// leader runs (LifecycleDue: activation, destruction, rotation by
// encryption count), per-version encryption counts (FlushUsage) and the
// hygiene findings (Hygiene). A commit that removes key material also asks
// every node to purge its disk (store.PurgeWrite).
package transit
