// Package pkcs11 is the PKCS#11 plumbing that keyraft's HSM seal
// (seal/pkcs11) and its PKCS#11 crypto plugin (plugins/pkcs11) share:
// the configuration of a token, a per-process registry of modules and
// logins, a pool of sessions, and the AES-GCM calls with their IV guard.
// It knows nothing of key labels, handles or blobs; each user finds,
// generates and uses its own keys.
//
// # Use
//
//	tok, err := pkcs11.Open(pkcs11.Config{
//		Lib: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "keyraft",
//		PIN: pin, Dialect: &dialect,
//	}, false) // false: read-only sessions
//	if err != nil { ... }
//	defer tok.Close()
//	s, err := tok.Get(ctx) // one goroutine's session
//	if err != nil { ... }
//	err = work(tok.Ctx, s.H)
//	if pkcs11.SessionLost(err) { tok.Discard(s) /* and try again */ } else { tok.Put(s) }
//
// # Configuration
//
// Config names the module (Lib), the token (Slot or TokenLabel, exactly
// one), the PIN (PIN, or PINFile, read by ReadPIN and by Open when PIN
// is empty) and the pool size (MaxSessions, default 8, at most 1024).
// Validate checks it without touching the module. Dialect words the
// errors for the user package: its name in front ("pkcs11 seal: ...")
// and its users' spelling of each field ("token_label" in the seal's
// HCL, "-token-label" for the plugin). Config prints without the PIN
// under every fmt verb.
//
// # One module per process
//
// C_Initialize and C_Finalize are process-wide, and a token's login is
// shared by all sessions of the process. Open and Close count Tokens per
// module (by resolved library path) and per token: the first Open of a
// module loads and initializes it (one that another library already
// initialized is used and left for it to finalize), the first Open on a
// token logs in, later ones must bring the same PIN (the registry keeps
// an HMAC of it under a random per-process key, never the PIN) and share
// the login, and the last Close logs out, finalizes and unloads.
// SoftHSM reads SOFTHSM2_CONF in C_Initialize, so a change takes effect
// once every Token of the process has closed.
//
// # Sessions
//
// A PKCS#11 session runs one operation at a time; two goroutines on one
// session interleave C_EncryptInit/C_Encrypt and corrupt it (SoftHSM
// dies with SIGSEGV). Get therefore lends a session to one goroutine
// until Put or Discard. There are MaxSessions of them, opened lazily;
// callers beyond that wait until one is returned, their context ends or
// the Token closes (ErrClosed). A session that failed with SessionLost
// goes back with Discard; its slot's next borrower opens a fresh one and,
// when the token forgot the login (every session had been lost), logs in
// again. After ObjectLost, look key handles up again.
//
// Stats reports the pool's counters (peak use, sessions opened, callers
// waiting); LoadedModules, how many modules the registry holds.
//
// # AES-GCM
//
// GCMEncrypt and GCMDecrypt refuse an IV that is not 12 bytes before the
// token sees it (CheckGCMIV): miekg/pkcs11 passes an empty IV as a NULL
// pointer, and SoftHSM then encrypts without complaint and
// deterministically — nonce reuse. GCMEncrypt returns the IV the token
// reports having used (some HSMs choose their own). A failed C_Decrypt is
// a *DecryptError, since tokens disagree on how they report a failed tag
// check (SoftHSM says CKR_GENERAL_ERROR); the caller decides what it
// means. FindObjects runs a whole object search and always ends it.
//
// # Errors
//
// The errors of Validate, ReadPIN, Open, Get and Close wrap ErrConfig,
// ErrModule, ErrToken, ErrPIN or ErrClosed, start with Dialect.Name, and
// never contain the PIN. Those of the GCM calls and FindObjects are bare
// ("C_Encrypt(CKM_AES_GCM): ..."), for the caller to put its name in
// front. PKCS#11 return values stay reachable with errors.As as a
// github.com/miekg/pkcs11.Error; IsCode tests for one.
package pkcs11
