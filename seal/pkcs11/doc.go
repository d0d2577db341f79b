// Package pkcs11 is keyraft's auto-unseal seal: the root key is wrapped
// by a key that lives in a hardware security module (or any PKCS#11
// token) and never leaves it. A node holding the PIN unseals itself at
// start-up, with no operator feeding Shamir shares.
//
// It implements seal.Seal (Type "pkcs11", Wrap, Unwrap) on top of
// github.com/miekg/pkcs11, so it needs cgo and the vendor's PKCS#11
// module (a shared library) on every node.
//
// # Quick start
//
//	s, err := pkcs11.Open(pkcs11.Config{
//		Lib:         "/usr/lib/softhsm/libsofthsm2.so",
//		TokenLabel:  "keyraft",
//		PIN:         pin, // from the environment or a file, never the config
//		KeyLabel:    "keyraft-root",
//		GenerateKey: true,
//	})
//	if err != nil { ... }
//	defer s.Close()
//	blob, err := s.Wrap(ctx, rootKey)  // store blob
//	rootKey, err = s.Unwrap(ctx, blob) // at the next start
//
// # Preparing a token
//
// With SoftHSM2 (for development and tests; use a real HSM in
// production):
//
//	softhsm2-util --init-token --free --label keyraft --pin 1234 --so-pin 5678
//
// Then either let keyraft create the key (GenerateKey), or create it
// yourself, for example with OpenSC:
//
//	pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label keyraft \
//	    --login --pin 1234 --keygen --key-type AES:32 --label keyraft-root \
//	    --sensitive --private --usage-decrypt
//
// (leave out --extractable: the key must not be extractable; SoftHSM
// still lists verify, wrap and unwrap among its usages, where keyraft's
// own generated key allows encrypt and decrypt only)
// and check it:
//
//	pkcs11-tool --module ... --token-label keyraft --login --pin 1234 --list-objects
//
// The listing must show "Access: sensitive, always sensitive, never
// extractable".
//
// # Configuration
//
// Config names the module (Lib), the token (Slot or TokenLabel — exactly
// one), the user PIN, the key (KeyLabel) and the mechanism:
//
//   - "CKM_AES_GCM" (the default): a 256-bit AES key. Each Wrap draws a
//     fresh 96-bit IV from crypto/rand, and the token encrypts with a
//     128-bit tag and additional authenticated data "keyraft-root-key"
//     followed by the blob header, so a blob whose header was edited does
//     not decrypt.
//   - "CKM_RSA_PKCS_OAEP": a 3072-bit RSA key pair, OAEP with SHA-256 and
//     MGF1-SHA-256 (no OAEP label). The token encrypts with the public-key
//     object and decrypts with the private key. OAEPHash "SHA1" selects
//     SHA-1 and MGF1-SHA-1 for tokens that implement nothing else —
//     SoftHSM 2.6 (Debian and Ubuntu ship 2.6.1) refuses SHA-256 OAEP with
//     CKR_ARGUMENTS_BAD; Open reports that as ErrMechanism and says so.
//
// With GenerateKey, Open creates a missing key as a token object that is
// private, sensitive and not extractable (so also always-sensitive and
// never-extractable), usable only to encrypt and decrypt (no wrap, unwrap,
// sign, verify or derive), with a random CKA_ID. RSA private keys get the
// same protection; the public key is a public token object. Without
// GenerateKey a missing key is ErrKeyNotFound. Two keys of one class with
// the same label are ErrKeyAmbiguous: keyraft does not guess which one
// protects the root key.
//
// Before returning, Open encrypts and decrypts a probe with the key, so
// a key without CKA_ENCRYPT/CKA_DECRYPT or a mechanism the token refuses
// fails at start-up rather than at the first Wrap.
//
// MaxSessions (default 8) bounds the operations that run at once.
//
// # The PIN
//
// The PIN is used for C_Login and kept in memory only to log in again
// when the token dropped the login (see Sessions). It is never logged and
// never part of an error; Config and Seal print without it under every
// fmt verb. The registry described below keeps an HMAC of it (under a
// random per-process key) to check the PIN of a second Seal on a token
// that is already logged in.
//
// # Blob format
//
// Blobs are versioned and self-describing:
//
//	0x01 | mechanism | label length | key label | IV (12, AES-GCM only) | ciphertext
//
// The mechanism byte is 1 (AES-GCM), 2 (RSA-OAEP SHA-256) or 3 (RSA-OAEP
// SHA-1). An AES-GCM ciphertext carries its 16-byte tag; an RSA-OAEP
// ciphertext is exactly the modulus length. Unwrap parses strictly:
// anything malformed is ErrBlob, and a blob made with another key label
// or mechanism is refused before the token sees it. Every Unwrap failure
// that means "not this key's blob" — malformed, other label, tag or
// padding check failed — wraps seal.ErrDecrypt.
//
// Tokens disagree on how they report a failed tag check: the standard has
// CKR_ENCRYPTED_DATA_INVALID, SoftHSM returns CKR_GENERAL_ERROR (for bad
// OAEP padding too). Unwrap tells a rejected ciphertext from a failing
// token by running a probe encryption and decryption on the same session
// when C_Decrypt fails that way: if the probe succeeds, the blob was at
// fault (seal.ErrDecrypt); if not, the token error is returned as is.
//
// # The IV
//
// Every AES-GCM call goes through one guard that refuses an IV that is
// not exactly 12 bytes. miekg/pkcs11 turns an empty IV into a NULL
// pointer of length 0, and SoftHSM then encrypts without complaint — and
// deterministically: two encryptions of one plaintext are equal, which
// is nonce reuse and breaks GCM. The tests demonstrate it. Some HSMs
// ignore the caller's IV and write their own back into the parameters;
// Wrap records the IV the token reports having used (after the same
// 12-byte check).
//
// # Sessions
//
// A PKCS#11 session runs one operation at a time; two goroutines on one
// session interleave C_EncryptInit/C_Encrypt and corrupt it (SoftHSM
// dies with SIGSEGV or a heap-corruption abort). A Seal therefore lends
// each concurrent operation a session of its own from a pool of
// MaxSessions, opened lazily; callers beyond that wait, until a session
// is returned, their context ends, or the Seal closes (ErrClosed).
//
// A session that fails with CKR_SESSION_HANDLE_INVALID,
// CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT,
// CKR_OPERATION_ACTIVE or CKR_USER_NOT_LOGGED_IN is closed and the
// operation retried on another; a fresh session that finds the token
// logged out (every session had been lost, which ends the login) logs in
// again. Key handles that went stale (CKR_KEY_HANDLE_INVALID,
// CKR_OBJECT_HANDLE_INVALID) are looked up again once — SoftHSM gives
// private objects new handles after such a re-login.
//
// # One module per process
//
// C_Initialize and C_Finalize are process-wide, and a token's login is
// shared by all sessions of the process. Open and Close use the registry
// of internal/pkcs11 (shared with the PKCS#11 crypto plugin), which,
// by resolved library path, counts Seals per module and per token:
// the first Open of a module loads and initializes it (a module someone
// else in the process already initialized — CKR_CRYPTOKI_ALREADY_INITIALIZED —
// is used and left for them to finalize), the first Open on a token logs
// in, later ones share the login, and the last Close logs out, finalizes
// and unloads. So Seals can be opened one after another, or several at
// once on different tokens (or the same one), and a closed module can be
// opened again. SoftHSM reads SOFTHSM2_CONF in C_Initialize, so a change
// takes effect once every Seal of the process has closed.
//
// # Health
//
// Healthy borrows a session, checks it is logged in, and encrypts and
// decrypts 16 bytes with the key — cheap for AES-GCM, one private-key
// operation for RSA. Report a failure as degraded: the root key already
// in memory keeps working, only a restart needs the HSM.
//
// # Errors
//
// Open's errors wrap ErrConfig (Validate), ErrModule (cannot load or
// initialize the library), ErrToken (no initialized token in the slot,
// or no or several tokens with the label), ErrPIN (CKR_PIN_INCORRECT,
// a locked, expired or invalid PIN, or a PIN that differs from the one
// this process is already logged in with), ErrKeyNotFound,
// ErrKeyAmbiguous or ErrMechanism. PKCS#11 return values stay reachable
// with errors.As as a github.com/miekg/pkcs11.Error.
//
// # Testing
//
// The tests run against a real SoftHSM2 token created per test in
// t.TempDir() (a softhsm2.conf pointing at a private token directory,
// SOFTHSM2_CONF set with t.Setenv, softhsm2-util --init-token) and check
// the generated key with OpenSC's pkcs11-tool. They do not skip: without
// SoftHSM2 and OpenSC they fail and print how to install them
// (apt-get install softhsm2 opensc; scripts/test.sh does it in CI).
// KEYRAFT_TEST_PKCS11_LIB overrides the library path.
package pkcs11
