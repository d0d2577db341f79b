package keys

import "strings"

// Type is a key type, named as in the Vault transit API.
type Type string

// The key types.
const (
	AES128GCM96       Type = "aes128-gcm96"
	AES256GCM96       Type = "aes256-gcm96"
	ChaCha20Poly1305  Type = "chacha20-poly1305"
	XChaCha20Poly1305 Type = "xchacha20-poly1305"
	Ed25519           Type = "ed25519"
	ECDSAP256         Type = "ecdsa-p256"
	ECDSAP384         Type = "ecdsa-p384"
	ECDSAP521         Type = "ecdsa-p521"
	RSA2048           Type = "rsa-2048"
	RSA3072           Type = "rsa-3072"
	RSA4096           Type = "rsa-4096"
	HMAC              Type = "hmac"
)

// allTypes lists every type in the order used by error messages.
var allTypes = []Type{
	AES128GCM96, AES256GCM96, ChaCha20Poly1305, XChaCha20Poly1305,
	Ed25519, ECDSAP256, ECDSAP384, ECDSAP521,
	RSA2048, RSA3072, RSA4096, HMAC,
}

var validTypesText = func() string {
	s := make([]string, len(allTypes))
	for i, t := range allTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}()

// ParseType returns the Type named s (exact, lower-case name). An unknown
// name gives an error wrapping ErrInvalidInput that lists the valid types.
func ParseType(s string) (Type, error) {
	for _, t := range allTypes {
		if string(t) == s {
			return t, nil
		}
	}
	return "", invalidInput("invalid key type %q: valid types are %s", s, validTypesText)
}

func (t Type) valid() bool {
	_, err := ParseType(string(t))
	return err == nil
}

// IsAEAD reports whether t is a symmetric AEAD type (aes*-gcm96, *chacha20-poly1305).
func (t Type) IsAEAD() bool {
	switch t {
	case AES128GCM96, AES256GCM96, ChaCha20Poly1305, XChaCha20Poly1305:
		return true
	}
	return false
}

// IsAsymmetric reports whether t has a public key (ed25519, ecdsa-*, rsa-*).
func (t Type) IsAsymmetric() bool {
	return t == Ed25519 || t.isECDSA() || t.isRSA()
}

// SupportsEncryption reports whether t can encrypt: AEAD types and RSA (OAEP).
func (t Type) SupportsEncryption() bool { return t.IsAEAD() || t.isRSA() }

// SupportsDecryption is the same as SupportsEncryption.
func (t Type) SupportsDecryption() bool { return t.SupportsEncryption() }

// SupportsSigning reports whether t can sign: ed25519, ecdsa-*, rsa-*.
func (t Type) SupportsSigning() bool { return t.IsAsymmetric() }

// SupportsDerivation reports whether a key of type t may be derived
// (Spec.Derived): AEAD types and ed25519.
func (t Type) SupportsDerivation() bool { return t.IsAEAD() || t == Ed25519 }

func (t Type) isECDSA() bool { return t == ECDSAP256 || t == ECDSAP384 || t == ECDSAP521 }
func (t Type) isRSA() bool   { return t == RSA2048 || t == RSA3072 || t == RSA4096 }

// symmetricKeySize is the key length in bytes of an AEAD type (and of the
// ed25519 seed); 0 for other types.
func (t Type) symmetricKeySize() int {
	switch t {
	case AES128GCM96:
		return 16
	case AES256GCM96, ChaCha20Poly1305, XChaCha20Poly1305, Ed25519:
		return 32
	}
	return 0
}

func (t Type) rsaBits() int {
	switch t {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}
