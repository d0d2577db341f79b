// Package seal is keyraft's root of trust.
//
// Three layers protect every stored value:
//
//   - The barrier keyring: versioned AES-256-GCM keys ("terms"). Every value
//     the state machine stores is encrypted under the active term, with its
//     storage path as associated data (see Barrier). Old terms stay in the
//     keyring so older values keep decrypting after a rotation.
//   - The root key: 32 random bytes that encrypt the keyring (WrapKeyring).
//     It exists only in memory while a node is unsealed.
//   - The seal: protects the root key (Seal.Wrap / Seal.Unwrap). With the
//     Shamir seal the wrapping key is split into unseal shares (Split,
//     Combine) that operators hold; a node recombines them as shares arrive
//     (ShareCollector) and never writes the combined key anywhere.
//
// Stored layout (all produced here, stored by the caller):
//
//	root-key blob : nonce(12) | AES-256-GCM(seal key, root key, aad "keyraft/root-key/v1")
//	keyring blob  : nonce(12) | AES-256-GCM(root key, keyring JSON, aad "keyraft/keyring/v1")
//	barrier value : 0x01 | term(4, big endian) | nonce(12) | AES-256-GCM(term key, value, aad path)
//
// Package seal knows nothing about HTTP or Raft. Secrets are compared in
// constant time and zeroed when a keyring is sealed.
package seal
