// Package fsm is keyraft's replicated state machine.
//
// The state is an ordered map from record keys to values. Every value is
// barrier ciphertext prepared by the node that proposed the change (see
// package seal); the state machine stores and replicates those bytes but
// never decrypts them. That keeps Apply deterministic and lets a sealed
// node keep applying the log.
//
// Each record carries a revision: the Raft index of the entry that last
// wrote it. A Command is a list of preconditions (Cond: "record K is still
// at revision R", or absent when R is 0) and writes (Op: put, delete,
// delete-prefix). Either every precondition holds and every write happens,
// or the Result carries a *ConflictError and nothing is written. Proposers
// use this for optimistic read-modify-write: read the record and its
// revision from the local view, prepare the new value, propose with the
// revision as a precondition, retry on conflict.
//
// Record key space (written by the layers above; listed here because every
// node must agree on it):
//
//	core/seal-config         seal type and share parameters (JSON, not secret)
//	core/root-key            root key wrapped by the Shamir seal
//	core/root-key-pkcs11     root key wrapped by the PKCS#11 seal
//	core/keyring             barrier keyring wrapped by the root key
//	core/keyring-rewrap      progress of re-encryption after a rotation (clear)
//	core/recovery-key        recovery key (auto-unseal), barrier-encrypted
//	core/cluster-ca-cert     cluster CA certificate, barrier-encrypted
//	core/cluster-ca-key      cluster CA private key, barrier-encrypted
//	core/gossip-key          gossip encryption key, barrier-encrypted
//	core/audit-hmac-key      audit HMAC key, barrier-encrypted
//	core/audit-signing-key   audit checkpoint signing key, barrier-encrypted
//	core/audit-public-key    its public key (clear)
//	sys/audit-device/<name>  audit devices configured through the API
//	auth/token/<sha256>      token entries, indexed by the hash of the token
//	transit/key/<name>       transit key policy and versions
//
// Keys beginning with a 0x00 byte are reserved for the state machine's own
// bookkeeping (the last applied index), which commands cannot write.
//
// Durability and restart: the Raft log is durable; the store follows it
// through WriteBehind and records the applied index in the same write as
// the state, so a restarted node resumes from it, skips replayed entries
// it holds and re-applies the rest; Raft runs with
// NoSnapshotRestoreOnStart.
//
// Snapshots stream a consistent storage view (Snapshot, Persist) while
// applies continue; Restore replaces the whole store in one write and
// refuses a malformed or truncated snapshot without touching the store.
//
// Command wire format (version 1):
//
//	0x01 | uvarint nconds | { uvarint len | key | uvarint revision }*
//	     | uvarint nops   | { kind | uvarint len | key | uvarint len | value }*
package fsm
