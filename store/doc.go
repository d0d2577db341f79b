// Package store is what a secrets engine sees of the node: the Store
// interface over the replicated record space, the transactions it commits,
// the errors it returns, and a cache of values derived from records.
//
// It sits below package cluster, whose Node implements Store, so an
// engine (package transit) depends on this contract and not on the node.
//
// Reads are local and decrypted: Read returns a record and its revision
// (the Raft index that last wrote it), Revision only the revision, List
// the keys under a prefix. The record keys are package fsm's Record*
// constants. Changes are optimistic: read, prepare a Txn whose Expect
// holds the revisions read (0: "still absent"), Commit; on an error
// matching ErrConflict, read again and retry. A change that removes key
// material adds PurgeWrite, so every node purges its disk of old copies.
//
// Decrypting or encrypting a value while the node is sealed fails with
// ErrSealed, as does List (Revision needs no key and still answers); while
// the node catches up with its Raft log after a restart, reads return
// ErrNotReady.
// cluster.ErrSealed and cluster.ErrNotReady are the same values.
//
// Cache keeps values derived from records (a parsed key, a policy) and
// uses one only while its record keeps the revision it was derived at. It
// does not even read the revision while the node's Raft applied index
// (AppliedIndex) has not moved since the value was last found current:
//
//	var keys store.Cache[*parsed]
//	keys.Max, keys.Zero = 4096, (*parsed).wipe
//	p, err := keys.Get(name, store.AppliedIndex(s),
//		func() (uint64, error) { return s.Revision(fsm.RecordTransitKey + name) },
//		func(uint64) (*parsed, uint64, error) { return readAndParse(s, name) })
//
// Call Purge when the node seals.
package store
