// Package cluster is the keyraft node: Raft (hashicorp/raft with
// raft-boltdb as log and stable store and a file snapshot store), the
// state machine and its storage, and the seal state.
//
// A Node is created with New(Config). A node with no Raft state
// bootstraps a one-voter cluster of itself. Every node starts sealed:
// Init creates the root of trust once per cluster, and Unseal takes
// unseal shares until the threshold is reached, then loads the barrier
// keyring into memory. Seal drops it again.
//
// The layers above talk to the node through store.Store (engines import
// package store, not cluster):
//
//   - Read(key) returns a decrypted record and its revision from the local
//     state machine (no Raft round trip: reads scale with nodes);
//   - Revision(key) returns only the revision, to check a cached value;
//   - List(prefix) lists record keys;
//   - Commit(ctx, txn) encrypts a transaction's values under the barrier,
//     with each record's key as associated data, and commits it through
//     Raft, conditional on the revisions the caller read.
//
// Data directory layout:
//
//	raft.db       Raft log and stable store (bbolt)
//	state.db      state machine records (bbolt), barrier ciphertext only
//	snapshots/    Raft snapshots of state.db, ciphertext only
//	purged-index  the last purge request this node has purged its disk after
//	keyraft.lock  flock held while a node has the directory open; the pid
//	              of its holder, named when a second node is refused
//
// A commit that removes key material adds store.PurgeWrite (a write of
// fsm.RecordPurge); every node then snapshots, drops its Raft log and
// older snapshots, and rewrites raft.db and state.db without freed pages
// (purge.go), so destroyed material leaves every disk.
//
// Nothing here writes the root key, the keyring or a token in the clear:
// the root key is wrapped by the seal, the keyring by the root key, and
// tokens are stored only as their SHA-256.
package cluster
