package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// Spec is what a key's configuration says about how its versions are used.
type Spec struct {
	Type Type
	// Derived: every operation needs a context, and uses the key derived
	// from the version's material with HKDF-SHA256 (info = context).
	Derived bool
	// Convergent: the nonce is computed from the plaintext, so the same
	// plaintext, context and associated data always give the same
	// ciphertext. Requires Derived and an AEAD type.
	Convergent bool
}

// Handle is one key version ready for use: the material is copied out of
// the Version and parsed once. A Handle is safe for concurrent use; Zero
// may be called concurrently with operations (they finish first).
type Handle struct {
	spec    Spec
	version int

	mu      sync.RWMutex
	zeroed  bool
	secret  []byte             // copy of Version.Secret
	hmacKey []byte             // copy of Version.HMACKey, or of Secret for type hmac
	aead    cipher.AEAD        // non-derived AEAD types
	edKey   ed25519.PrivateKey // non-derived ed25519
	ecKey   *ecdsa.PrivateKey
	rsaKey  *rsa.PrivateKey
}

// NewHandle checks spec against v's material and prepares it for use. The
// Handle keeps its own copy of the material: zeroing v afterwards does not
// affect it.
func NewHandle(spec Spec, v *Version) (*Handle, error) {
	t := spec.Type
	if !t.valid() {
		_, err := ParseType(string(t))
		return nil, err
	}
	if v == nil {
		return nil, invalidInput("missing key version")
	}
	if v.Version < 1 || v.Version > maxVersion {
		return nil, invalidInput("invalid key version %d", v.Version)
	}
	if spec.Derived && !t.SupportsDerivation() {
		return nil, invalidInput("key type %s does not support derivation", t)
	}
	if spec.Convergent && !spec.Derived {
		return nil, invalidInput("convergent encryption requires a derived key")
	}
	if spec.Convergent && !t.IsAEAD() {
		return nil, invalidInput("key type %s does not support convergent encryption", t)
	}
	h := &Handle{
		spec:    spec,
		version: v.Version,
		secret:  append([]byte(nil), v.Secret...),
	}
	if t == HMAC {
		h.hmacKey = append([]byte(nil), v.Secret...)
	} else if len(v.HMACKey) > 0 {
		h.hmacKey = append([]byte(nil), v.HMACKey...)
	}
	if err := h.parse(); err != nil {
		h.Zero()
		return nil, err
	}
	return h, nil
}

func (h *Handle) parse() error {
	t := h.spec.Type
	badMaterial := func() error {
		return invalidInput("key version %d: material is not a valid %s key", h.version, t)
	}
	switch {
	case t.IsAEAD() || t == Ed25519:
		if len(h.secret) != t.symmetricKeySize() {
			return badMaterial()
		}
		if h.spec.Derived {
			return nil // the working key depends on the context
		}
		if t == Ed25519 {
			h.edKey = ed25519.NewKeyFromSeed(h.secret)
			return nil
		}
		a, err := newAEAD(t, h.secret)
		if err != nil {
			return badMaterial()
		}
		h.aead = a
	case t == HMAC:
		if len(h.secret) < minHMACKeySize || len(h.secret) > maxHMACKeySize {
			return badMaterial()
		}
	case t.isECDSA():
		k, err := x509.ParsePKCS8PrivateKey(h.secret)
		ek, ok := k.(*ecdsa.PrivateKey)
		if err != nil || !ok || ek.Curve != curveOf(t) {
			return badMaterial()
		}
		h.ecKey = ek
	case t.isRSA():
		k, err := x509.ParsePKCS8PrivateKey(h.secret)
		rk, ok := k.(*rsa.PrivateKey)
		if err != nil || !ok || rk.N.BitLen() != t.rsaBits() {
			return badMaterial()
		}
		h.rsaKey = rk
	}
	return nil
}

// Version returns the key version number of h.
func (h *Handle) Version() int { return h.version }

// Zero zeroes h's copies of the raw material and drops the parsed keys
// (Go cannot reliably zero the internals of cipher, ecdsa or rsa values;
// they become garbage). Every later operation returns an error.
func (h *Handle) Zero() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.zeroed = true
	clear(h.secret)
	clear(h.hmacKey)
	clear(h.edKey)
	h.secret, h.hmacKey, h.edKey = nil, nil, nil
	h.aead, h.ecKey, h.rsaKey = nil, nil, nil
}

// EncryptOptions are the per-request parameters of Encrypt and Decrypt.
type EncryptOptions struct {
	// Context is required (non-empty) for derived keys; ignored otherwise.
	Context []byte
	// AssociatedData is authenticated but not encrypted (AEAD types only).
	AssociatedData []byte
}

// Encrypt encrypts plaintext and returns "vault:v<N>:<base64(body)>".
// For AEAD types body is nonce || ciphertext || tag; for RSA it is the
// RSA-OAEP (SHA-256, no label) ciphertext.
func (h *Handle) Encrypt(plaintext []byte, o EncryptOptions) (string, error) {
	body, err := h.Seal(plaintext, o)
	if err != nil {
		return "", err
	}
	return FormatCiphertext(h.version, body), nil
}

// Seal is Encrypt without the "vault:v<N>:" framing: it returns the body
// itself, for a caller with a format of its own (a crypto plugin).
func (h *Handle) Seal(plaintext []byte, o EncryptOptions) ([]byte, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.zeroed {
		return nil, errZeroed
	}
	t := h.spec.Type
	switch {
	case t.IsAEAD():
		a, key, err := h.aeadFor(o.Context)
		if err != nil {
			return nil, err
		}
		ns := a.NonceSize()
		buf := make([]byte, ns, ns+len(plaintext)+a.Overhead())
		if h.spec.Convergent {
			convergentNonce(buf, key, o.AssociatedData, plaintext)
		} else {
			rand.Read(buf)
		}
		clear(key)
		return a.Seal(buf, buf, plaintext, o.AssociatedData), nil
	case t.isRSA():
		if len(o.AssociatedData) > 0 {
			return nil, errADNotSupported
		}
		pub := &h.rsaKey.PublicKey
		if max := pub.Size() - 2*sha256.Size - 2; len(plaintext) > max {
			return nil, invalidInput("plaintext too long for key type %s: at most %d bytes", t, max)
		}
		body, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, plaintext, nil)
		if err != nil {
			return nil, invalidInput("rsa encryption failed")
		}
		return body, nil
	default:
		return nil, unsupported("key type %s does not support encryption", t)
	}
}

// Decrypt decrypts body, the base64-decoded part of a ciphertext after
// "vault:v<N>:" (see ParseCiphertext); the caller picks the Handle of
// version N. Options must be the ones used to encrypt.
func (h *Handle) Decrypt(body []byte, o EncryptOptions) ([]byte, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.zeroed {
		return nil, errZeroed
	}
	t := h.spec.Type
	switch {
	case t.IsAEAD():
		a, key, err := h.aeadFor(o.Context)
		if err != nil {
			return nil, err
		}
		clear(key)
		ns := a.NonceSize()
		if len(body) < ns+a.Overhead() {
			return nil, invalidCiphertext("ciphertext too short")
		}
		pt, err := a.Open(nil, body[:ns], body[ns:], o.AssociatedData)
		if err != nil {
			return nil, invalidCiphertext("message authentication failed")
		}
		if pt == nil {
			pt = []byte{}
		}
		return pt, nil
	case t.isRSA():
		if len(o.AssociatedData) > 0 {
			return nil, errADNotSupported
		}
		if len(body) != h.rsaKey.Size() {
			return nil, invalidCiphertext("ciphertext has the wrong length for the key")
		}
		pt, err := rsa.DecryptOAEP(sha256.New(), nil, h.rsaKey, body, nil)
		if err != nil {
			return nil, invalidCiphertext("decryption failed")
		}
		if pt == nil {
			pt = []byte{}
		}
		return pt, nil
	default:
		return nil, unsupported("key type %s does not support decryption", t)
	}
}

var (
	errADNotSupported = invalidInput("associated_data is only supported by AEAD key types")
	errContextMissing = invalidInput("context is required for a derived key")
)

// aeadFor returns the AEAD to use for context. For a derived key it also
// returns the derived key (the caller zeroes it); otherwise key is nil.
func (h *Handle) aeadFor(context []byte) (a cipher.AEAD, key []byte, err error) {
	if !h.spec.Derived {
		return h.aead, nil, nil
	}
	key, err = h.derive(context)
	if err != nil {
		return nil, nil, err
	}
	a, err = newAEAD(h.spec.Type, key)
	if err != nil {
		clear(key)
		return nil, nil, err
	}
	return a, key, nil
}

// derive returns HKDF-SHA256(secret, salt=nil, info=context) of the key's
// length. The context must not be empty.
func (h *Handle) derive(context []byte) ([]byte, error) {
	if len(context) == 0 {
		return nil, errContextMissing
	}
	return hkdf.Key(sha256.New, h.secret, nil, string(context), len(h.secret))
}

// convergentNonce fills nonce with the first len(nonce) bytes of
// HMAC-SHA256(key, uint64be(len(ad)) || ad || plaintext). The associated
// data is part of the input so that two messages with the same plaintext
// but different associated data never share a nonce (nonce reuse with
// different inputs would break GCM's authentication).
func convergentNonce(nonce, key, ad, plaintext []byte) {
	m := hmac.New(sha256.New, key)
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(ad)))
	m.Write(l[:])
	m.Write(ad)
	m.Write(plaintext)
	copy(nonce, m.Sum(nil))
}

func newAEAD(t Type, key []byte) (cipher.AEAD, error) {
	switch t {
	case AES128GCM96, AES256GCM96:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	case XChaCha20Poly1305:
		return chacha20poly1305.NewX(key)
	}
	return nil, unsupported("key type %s does not support encryption", t)
}
