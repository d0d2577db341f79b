// Package pkcs11 is the built-in PKCS#11 crypto backend (served by
// cmd/keyraft-plugin-pkcs11): keys are generated inside an HSM and used
// there, and never leave it — the node stores only a handle, like a
// custom key store of AWS KMS. Every node of a cluster must reach the
// same token (a network HSM; SoftHSM2 token directory in tests), since a
// key made through one node's plugin is used through all of them.
//
// # Keys
//
//   - aes256-gcm96: an AES-256 secret key made with CKM_AES_KEY_GEN,
//     used with CKM_AES_GCM, a 96-bit IV drawn from crypto/rand by the
//     plugin for each encryption and a 128-bit tag. The ciphertext is
//     IV || ciphertext || tag, the shape of the soft backend's, so the
//     node formats both as vault:vN:base64. Every GCM call refuses an IV
//     that is not 12 bytes: SoftHSM takes an empty IV without complaint
//     and then encrypts deterministically (nonce reuse).
//   - hmac-sha256: a 256-bit CKK_GENERIC_SECRET key, used with
//     CKM_SHA256_HMAC; offered when the token has that mechanism.
//   - ed25519: a CKK_EC_EDWARDS key pair made with
//     CKM_EC_EDWARDS_KEY_PAIR_GEN; signing (pure Ed25519, CKM_EDDSA) and
//     verification run in the token. Generate also returns the 32-byte
//     public key. Offered when the token has CKM_EDDSA (SoftHSM 2.6 does).
//
// Secret and private keys are token objects, private, sensitive and not
// extractable (so the token marks them always-sensitive and
// never-extractable), with no wrap, unwrap or derive usage, a random
// 16-byte CKA_ID and a label that names the key type and id for an
// operator listing the token. An Ed25519 public key is a public token
// object with the same CKA_ID.
//
// # Handles
//
// Generate returns no material (Capabilities.KeepsMaterial is true),
// only the handle 0x01 | key type code | CKA_ID. A use looks the object
// up by CKA_ID, class and key type, and caches the object handle; a
// cached handle the token no longer knows is looked up again once. A key
// reference that carries material is refused (ErrMaterial): it belongs to
// another backend. Destroy deletes the object; destroying a key that is
// already gone succeeds, so a destroy can be retried.
//
// # Configuration
//
// ParseConfig reads -lib, -token-label or -slot, -pin-file and
// -max-sessions, with KEYRAFT_HSM_* environment variables as defaults;
// the PIN comes from KEYRAFT_HSM_PIN or the PIN file, never from an
// argument (arguments show in process listings and in the plugin
// catalog). The PIN is in no log line and no error, and Config prints
// without it under every fmt verb.
//
// # Sessions
//
// A PKCS#11 session runs one operation at a time; two goroutines on one
// session corrupt it (SoftHSM crashes). Each call borrows a session from
// a pool of MaxSessions read/write sessions (opened lazily) and runs its
// whole batch on it. A session the token reports lost is closed and the
// item runs again on a fresh one; a fresh session that finds the token
// logged out (every session had been lost, which ends the login) logs in
// again. Module, login and pool are internal/pkcs11's, shared with the
// HSM seal: users of one token in one process share its login, and a
// second Open on it must bring the same PIN (else ErrPIN).
//
// # Errors
//
// A batch returns one result per item; what is wrong with one item (a
// malformed handle, a key of another type, a destroyed key, a ciphertext
// that does not authenticate) is that item's Err. The call itself fails
// only when no session can be had: the backend is closed, the token is
// gone, or the context ended.
package pkcs11
