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
// Record key space (written by the layers above; every node must agree on
// it). The keys are constants in records.go (Records is this list, and a
// test keeps the two the same); <…> is the record's own part after a
// prefix:
//
//	core/seal-config                            seal type and share parameters (JSON, clear)
//	core/root-key                               root key wrapped by the Shamir seal
//	core/root-key-<seal type>                   root key wrapped by an auto seal (core/root-key-pkcs11)
//	core/barrier-root-key                       root key under the barrier (rekey of an auto seal)
//	core/recovery-key                           recovery key (auto-unseal), barrier-encrypted
//	core/keyring                                barrier keyring wrapped by the root key
//	core/keyring-rewrap                         progress of re-encryption after a rotation (clear)
//	core/cluster-ca-cert                        cluster CA certificate, barrier-encrypted
//	core/cluster-ca-key                         cluster CA private key, barrier-encrypted
//	core/gossip-key                             gossip encryption key, barrier-encrypted
//	core/audit-hmac-key                         audit HMAC key, barrier-encrypted
//	core/audit-signing-key                      audit checkpoint signing key, barrier-encrypted
//	core/audit-public-key                       its public key (clear)
//	core/purge                                  each new revision: every node purges its disk
//	auth/token/<sha256>                         token entries, by the hash of the token
//	auth/accessor/<accessor>                    token hash of an accessor
//	auth/children/<parent>/<child>              child tokens, by accessor
//	auth/cert/role/<name>                       certificate auth roles
//	sys/policy/<name>                           ACL policies of the root namespace
//	sys/namespace/<name>                        namespaces
//	sys/ns/<ns>/policy/<name>                   ACL policies of namespace ns
//	sys/audit-device/<name>                     audit devices configured through the API
//	sys/audit-cursor/cluster/<device>           delivery cursor of a cluster-wide audit device
//	sys/audit-cursor/node/<node>/<device>       delivery cursor of a node's audit device
//	sys/grant/<id>                              two-person grants
//	sys/grant-active/<requester>/<key>/<op>     index of active grants
//	sys/break-glass/config                      break-glass emergency policy
//	sys/break-glass/active                      break-glass session in progress
//	sys/plugins/catalog/<type>/<name>           plugin catalog entries
//	transit/key/<name>                          transit key policy and versions
//	transit/usage/<name>                        transit key usage counts
//	transit/backend-destroy/<backend>/<handle>  backend keys still to destroy
//	transit/wrapping-key                        wrapping key for key imports
//	transit/config/keys                         the engine's key settings (disable_upsert)
//
// Keys beginning with a 0x00 byte are reserved for the state machine's own
// bookkeeping (the last applied index and the audit chain: its head, events,
// checkpoints and base), which commands cannot write.
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
