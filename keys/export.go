package keys

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
)

// Export kinds, as in the Vault transit export endpoint.
const (
	ExportEncryptionKey = "encryption-key"
	ExportSigningKey    = "signing-key"
	ExportHMACKey       = "hmac-key"
	ExportPublicKey     = "public-key"
)

// PublicKey returns the public key of an asymmetric key: for ed25519 the
// standard base64 of the 32 raw bytes, for ecdsa and rsa a PEM "PUBLIC KEY"
// block (PKIX). A derived ed25519 key needs the context; other keys ignore
// it. Other types return ErrUnsupported.
func (h *Handle) PublicKey(context []byte) (string, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.zeroed {
		return "", errZeroed
	}
	return h.publicKey(context)
}

func (h *Handle) publicKey(context []byte) (string, error) {
	t := h.spec.Type
	switch {
	case t == Ed25519:
		priv := h.edKey
		if h.spec.Derived {
			seed, err := h.derive(context)
			if err != nil {
				return "", err
			}
			priv = ed25519.NewKeyFromSeed(seed)
			clear(seed)
			defer clear(priv)
		}
		return base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)), nil
	case t.isECDSA():
		return pkixPEM(&h.ecKey.PublicKey)
	case t.isRSA():
		return pkixPEM(&h.rsaKey.PublicKey)
	}
	return "", unsupported("key type %s has no public key", t)
}

func pkixPEM(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// Export returns key material in the Vault transit export formats:
//
//   - "encryption-key": AEAD types: standard base64 of the key; rsa: PEM
//     "RSA PRIVATE KEY" (PKCS#1).
//   - "signing-key": ed25519: standard base64 of the 64-byte private key
//     (seed || public key); ecdsa: PEM "EC PRIVATE KEY" (SEC 1); rsa: PEM
//     "RSA PRIVATE KEY" (PKCS#1).
//   - "hmac-key": standard base64 of the HMAC key (Secret for type hmac).
//   - "public-key": as PublicKey(nil).
//
// For derived keys the base material is exported (every derived key can be
// computed from it); the public key of a derived ed25519 key needs a
// context, so "public-key" fails for it. A kind that does not apply to the
// type returns ErrUnsupported; an unknown kind ErrInvalidInput. Whether a
// key may be exported at all is the caller's decision.
func (h *Handle) Export(kind string) (string, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.zeroed {
		return "", errZeroed
	}
	t := h.spec.Type
	switch kind {
	case ExportEncryptionKey:
		switch {
		case t.IsAEAD():
			return base64.StdEncoding.EncodeToString(h.secret), nil
		case t.isRSA():
			return pkcs1PEM(h), nil
		}
	case ExportSigningKey:
		switch {
		case t == Ed25519:
			priv := ed25519.NewKeyFromSeed(h.secret)
			defer clear(priv)
			return base64.StdEncoding.EncodeToString(priv), nil
		case t.isECDSA():
			der, err := x509.MarshalECPrivateKey(h.ecKey)
			if err != nil {
				return "", err
			}
			defer clear(der)
			return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), nil
		case t.isRSA():
			return pkcs1PEM(h), nil
		}
	case ExportHMACKey:
		if len(h.hmacKey) == 0 {
			return "", unsupported("key version %d has no hmac key", h.version)
		}
		return base64.StdEncoding.EncodeToString(h.hmacKey), nil
	case ExportPublicKey:
		return h.publicKey(nil)
	default:
		return "", invalidInput("invalid export type %q: valid types are %s, %s, %s, %s",
			kind, ExportEncryptionKey, ExportSigningKey, ExportHMACKey, ExportPublicKey)
	}
	return "", unsupported("key type %s cannot be exported as %s", t, kind)
}

func pkcs1PEM(h *Handle) string {
	der := x509.MarshalPKCS1PrivateKey(h.rsaKey)
	defer clear(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}))
}
