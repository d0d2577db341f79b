// Package keys is the cryptographic core of keyraft's transit engine: key
// types, key versions, the ciphertext format and every transit operation
// (encrypt, decrypt, sign, verify, hmac, export). It is pure and in-process:
// it knows nothing about HTTP, storage or Raft, and it reads no clock. It
// uses crypto/rand for key generation and nonces; callers never supply
// nonces.
//
// # Key types
//
//	type                key material (Version.Secret)   encrypt  sign  derive  public key
//	aes128-gcm96        16-byte AES key                 yes      -     yes     -
//	aes256-gcm96        32-byte AES key                 yes      -     yes     -
//	chacha20-poly1305   32-byte key                     yes      -     yes     -
//	xchacha20-poly1305  32-byte key                     yes      -     yes     -
//	ed25519             32-byte seed (RFC 8032)         -        yes   yes     yes
//	ecdsa-p256/384/521  PKCS#8 DER private key          -        yes   -       yes
//	rsa-2048/3072/4096  PKCS#8 DER private key          yes      yes   -       yes
//	hmac                16..512 random bytes (HMAC key) -        -     -       -
//
// Every type can compute HMACs (as in Vault): each Version also carries
// HMACKey, 32 random bytes used by HMAC and VerifyHMAC; a key of type hmac
// uses its Secret instead. Decryption is supported exactly where encryption
// is. Type names are exact and lower-case; ParseType rejects anything else
// with an error that lists the valid names.
//
// # Versions and handles
//
// A Version is the secret material of one key version. GenerateVersion
// creates it; the caller serializes it with encoding/json and stores it only
// encrypted under the barrier. Version.Zero overwrites the material.
//
// A Handle is one version ready for use: NewHandle copies the material,
// checks it against the Spec (type, Derived, Convergent) and parses it once
// (AEAD cipher, private key). Handles are safe for concurrent use. Handle.Zero
// zeroes the handle's copies of the raw material and drops the parsed keys;
// later calls fail with an internal error. The caller picks the Handle by
// the version number found in a ciphertext or signature.
//
// # Ciphertext, signature and HMAC strings
//
//	vault:v<N>:<base64(body)>
//
// N is the key version, a decimal integer in 1..2^31-1 without sign or
// leading zeros. The body is standard, padded base64, with one exception: an
// ecdsa signature made with marshaling algorithm "jws" is unpadded base64url
// (RFC 7515), as in Vault. ParseCiphertext accepts only canonical standard
// base64 and is exact: FormatCiphertext(ParseCiphertext(s)) == s.
// ParseSignature accepts both encodings and is meant for signatures and
// HMACs. Parse errors wrap ErrInvalidCiphertext and name the problem
// ("missing vault: prefix", "invalid version", "empty body", "invalid
// base64").
//
// # Encryption
//
// AEAD types (AES-GCM with 96-bit nonces, ChaCha20-Poly1305, and
// XChaCha20-Poly1305 from golang.org/x/crypto) produce
//
//	body = nonce || ciphertext || 16-byte tag
//
// with a random 12-byte nonce (24 bytes for xchacha20-poly1305).
// EncryptOptions.AssociatedData is authenticated, not encrypted, and must be
// given again to decrypt. A body shorter than nonce + tag is rejected as
// "ciphertext too short"; any authentication failure (tampering, wrong key
// version, wrong context, wrong associated data) is "message authentication
// failed". Both wrap ErrInvalidCiphertext.
//
// RSA keys encrypt with RSA-OAEP, SHA-256 for both hash and MGF1, and no
// label; body is the raw OAEP ciphertext (the modulus size). The plaintext is
// limited to modulus bytes - 66 (190 bytes for rsa-2048). Associated data is
// refused with ErrInvalidInput.
//
// # Derived keys
//
// With Spec.Derived (AEAD types and ed25519) every encrypt, decrypt, sign,
// verify and public-key call needs a non-empty context, and uses the key
//
//	HKDF-SHA256(secret = Version.Secret, salt = none, info = context)
//
// of the type's key length (for ed25519 the 32-byte seed is derived). For
// keys that are not derived the context is ignored, as in Vault. HMAC never
// uses derivation.
//
// # Convergent encryption
//
// With Spec.Convergent (which requires Derived and an AEAD type) the nonce is
// not random but
//
//	nonce = first nonce-size bytes of HMAC-SHA256(derived key,
//	        uint64_big_endian(len(associated data)) || associated data || plaintext)
//
// so the same plaintext, context and associated data always produce the same
// ciphertext (useful for equality lookups), and different inputs never share
// a nonce. The body layout and decryption are unchanged.
//
// # Signatures
//
// ed25519 signs the input itself (pure Ed25519); HashAlgorithm is checked
// but ignored, and Prehashed is refused. ecdsa and rsa sign a digest of the
// input, computed with SignOptions.HashAlgorithm: sha1, sha2-224, sha2-256
// (default), sha2-384, sha2-512, sha3-224, sha3-256, sha3-384, sha3-512. With
// Prehashed the input is the digest and must have the hash's length.
//
//   - ecdsa: MarshalingAlgorithm "asn1" (default) gives a DER SEQUENCE{r, s};
//     "jws" gives r || s, each left-padded to the curve's byte size (32, 48,
//     66), encoded as unpadded base64url.
//   - rsa: SignatureAlgorithm "pss" (default) or "pkcs1v15". PSS uses MGF1
//     with the same hash; SaltLength "auto" (default) signs with the largest
//     salt and verifies any, "hash" uses the digest length, an integer n
//     (1 .. modulus bytes - hash size - 2) uses exactly n. HashAlgorithm
//     "none" is allowed only with pkcs1v15 and Prehashed: the input (at most
//     modulus bytes - 11) is signed without a DigestInfo prefix.
//
// Options that do not apply to a key type are checked for valid values and
// otherwise ignored. Verify returns (false, nil) for a wrong or malformed
// signature and an error only for bad options or input.
//
// # HMAC and hashing
//
// HMAC accepts sha2-224, sha2-256 (default), sha2-384, sha2-512, sha3-224,
// sha3-256, sha3-384 and sha3-512; VerifyHMAC compares in constant time.
// Hash computes a plain digest with the signature hash names ("none" is
// refused because it computes nothing).
//
// # Public keys and export
//
// PublicKey returns the standard base64 of the 32 raw bytes for ed25519 and
// a PEM "PUBLIC KEY" block (PKIX, RFC 5280) for ecdsa and rsa. Export
// returns, per kind:
//
//	encryption-key  AEAD: base64 key; rsa: PEM "RSA PRIVATE KEY" (PKCS#1)
//	signing-key     ed25519: base64 of the 64-byte private key (seed || public key);
//	                ecdsa: PEM "EC PRIVATE KEY" (SEC 1); rsa: PEM "RSA PRIVATE KEY"
//	hmac-key        base64 of HMACKey (of Secret for type hmac); every type
//	public-key      as PublicKey(nil)
//
// For derived keys Export returns the base material. Whether a key may be
// exported is decided by the caller.
//
// # Errors
//
// Every error caused by the request wraps one of ErrInvalidInput,
// ErrInvalidCiphertext or ErrUnsupported (test with errors.Is) and has a
// short message meant for API users, for example "key type ed25519 does not
// support encryption", "context is required for a derived key" or "invalid
// ciphertext: message authentication failed". Messages never contain key
// material, plaintext or input data. Server-side failures (a zeroed Handle,
// a failure of the platform's key generation) wrap none of them.
package keys
