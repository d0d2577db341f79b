package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"math/big"
	"strconv"
)

// SignOptions are the per-request parameters of Sign and Verify. Options
// that do not apply to the key type are checked for valid values and
// otherwise ignored.
type SignOptions struct {
	// HashAlgorithm: "" (sha2-256), sha1, sha2-224, sha2-256, sha2-384,
	// sha2-512, sha3-224, sha3-256, sha3-384, sha3-512, or none (only with
	// rsa pkcs1v15 and Prehashed). Ignored by ed25519.
	HashAlgorithm string
	// Prehashed: the input is already the digest (ecdsa and rsa only).
	Prehashed bool
	// SignatureAlgorithm (rsa only): "" or "pss" (default), "pkcs1v15".
	SignatureAlgorithm string
	// MarshalingAlgorithm (ecdsa only): "" or "asn1" (default, DER), "jws"
	// (fixed-size r||s, encoded as unpadded base64url in the signature string).
	MarshalingAlgorithm string
	// SaltLength (rsa pss only): "" or "auto" (default: the maximum when
	// signing, any when verifying), "hash" (the digest length) or a decimal
	// integer.
	SaltLength string
	// Context is required for derived ed25519 keys.
	Context []byte
}

const (
	sigPSS      = "pss"
	sigPKCS1v15 = "pkcs1v15"
	marshalASN1 = "asn1"
	marshalJWS  = "jws"
)

// signPlan is SignOptions resolved for one key.
type signPlan struct {
	hash    crypto.Hash // 0: none (rsa pkcs1v15) or ed25519
	digest  []byte      // what is signed (ed25519: the input itself)
	pkcs1   bool
	jws     bool
	saltLen int
	edKey   ed25519.PrivateKey
	derived bool // edKey was derived for this call and is zeroed by release
}

func (p *signPlan) release() {
	if p.derived {
		clear(p.edKey)
	}
}

func (h *Handle) plan(input []byte, o SignOptions, verifying bool) (*signPlan, error) {
	t := h.spec.Type
	if !t.SupportsSigning() {
		op := "signing"
		if verifying {
			op = "verification"
		}
		return nil, unsupported("key type %s does not support %s", t, op)
	}
	p := &signPlan{}
	switch o.SignatureAlgorithm {
	case "", sigPSS:
	case sigPKCS1v15:
		p.pkcs1 = true
	default:
		return nil, invalidInput("invalid signature_algorithm %q: valid algorithms are pss, pkcs1v15", o.SignatureAlgorithm)
	}
	switch o.MarshalingAlgorithm {
	case "", marshalASN1:
	case marshalJWS:
		p.jws = true
	default:
		return nil, invalidInput("invalid marshaling_algorithm %q: valid algorithms are asn1, jws", o.MarshalingAlgorithm)
	}
	switch o.SaltLength {
	case "", "auto":
		p.saltLen = rsa.PSSSaltLengthAuto
	case "hash":
		p.saltLen = rsa.PSSSaltLengthEqualsHash
	default:
		n, err := strconv.Atoi(o.SaltLength)
		if err != nil || n < 1 || o.SaltLength[0] < '0' || o.SaltLength[0] > '9' {
			return nil, invalidInput("invalid salt_length %q: valid values are auto, hash or a positive integer", o.SaltLength)
		}
		p.saltLen = n
	}
	hash, err := signHash(o.HashAlgorithm)
	if err != nil {
		return nil, err
	}

	if hash == 0 && t == Ed25519 {
		return nil, invalidInput("hash_algorithm none is only supported with rsa keys and signature_algorithm pkcs1v15")
	}
	if t == Ed25519 {
		// Pure Ed25519 signs the message itself: prehashed and the hash
		// algorithm change nothing (as in Vault, which has no Ed25519ph).
		p.edKey = h.edKey
		if h.spec.Derived {
			seed, err := h.derive(o.Context)
			if err != nil {
				return nil, err
			}
			p.edKey, p.derived = ed25519.NewKeyFromSeed(seed), true
			clear(seed)
		}
		p.digest = input
		return p, nil
	}

	p.hash = hash
	if hash == 0 {
		if !t.isRSA() || !p.pkcs1 {
			return nil, invalidInput("hash_algorithm none is only supported with rsa keys and signature_algorithm pkcs1v15")
		}
		if !o.Prehashed {
			return nil, invalidInput("hash_algorithm none requires prehashed input")
		}
		if max := h.rsaKey.Size() - 11; len(input) > max {
			return nil, invalidInput("input too long for key type %s: at most %d bytes with hash_algorithm none", t, max)
		}
		p.digest = input
		return p, nil
	}
	if o.Prehashed {
		if len(input) != hash.Size() {
			return nil, invalidInput("prehashed input must be %d bytes for hash_algorithm %s, got %d", hash.Size(), hashName(hash), len(input))
		}
		p.digest = input
	} else {
		p.digest = digest(hash, input)
	}
	if t.isRSA() && !p.pkcs1 && p.saltLen > 0 {
		// emLen - hLen - 2, with emLen = ceil((modBits-1)/8).
		if max := (h.rsaKey.N.BitLen()-1+7)/8 - hash.Size() - 2; p.saltLen > max {
			return nil, invalidInput("invalid salt_length %d: at most %d for key type %s and hash_algorithm %s", p.saltLen, max, t, hashName(hash))
		}
	}
	return p, nil
}

func hashName(h crypto.Hash) string {
	for _, a := range hashAlgorithms {
		if a.hash == h {
			return a.name
		}
	}
	return h.String()
}

// Sign signs input and returns "vault:v<N>:<base64(signature)>". ed25519
// signs the input itself (pure Ed25519); ecdsa and rsa sign its digest
// (see SignOptions). The base64 is standard, except for ecdsa with
// marshaling algorithm jws, where it is unpadded base64url.
func (h *Handle) Sign(input []byte, o SignOptions) (string, error) {
	sig, err := h.SignBody(input, o)
	if err != nil {
		return "", err
	}
	if o.MarshalingAlgorithm == marshalJWS && h.spec.Type.isECDSA() {
		return formatWith(base64.RawURLEncoding, h.version, sig), nil
	}
	return FormatCiphertext(h.version, sig), nil
}

// SignBody is Sign without the "vault:v<N>:" framing: the signature
// itself (for ecdsa jws, r||s of fixed size).
func (h *Handle) SignBody(input []byte, o SignOptions) ([]byte, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.zeroed {
		return nil, errZeroed
	}
	p, err := h.plan(input, o, false)
	if err != nil {
		return nil, err
	}
	defer p.release()
	t := h.spec.Type
	var sig []byte
	switch {
	case t == Ed25519:
		sig = ed25519.Sign(p.edKey, p.digest)
	case t.isECDSA():
		if p.jws {
			r, s, err := ecdsa.Sign(rand.Reader, h.ecKey, p.digest)
			if err != nil {
				return nil, invalidInput("signing failed")
			}
			n := (h.ecKey.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*n)
			r.FillBytes(sig[:n])
			s.FillBytes(sig[n:])
			return sig, nil
		}
		sig, err = ecdsa.SignASN1(rand.Reader, h.ecKey, p.digest)
	case p.pkcs1:
		sig, err = rsa.SignPKCS1v15(nil, h.rsaKey, p.hash, p.digest)
	default:
		sig, err = rsa.SignPSS(rand.Reader, h.rsaKey, p.hash, p.digest, &rsa.PSSOptions{SaltLength: p.saltLen})
	}
	if err != nil {
		return nil, invalidInput("signing failed")
	}
	return sig, nil
}

// Verify checks sigBody (the decoded body of a signature string, see
// ParseSignature) against input. A wrong or malformed signature gives
// (false, nil); an error means bad options or input.
func (h *Handle) Verify(input, sigBody []byte, o SignOptions) (bool, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.zeroed {
		return false, errZeroed
	}
	p, err := h.plan(input, o, true)
	if err != nil {
		return false, err
	}
	defer p.release()
	t := h.spec.Type
	switch {
	case t == Ed25519:
		pub := p.edKey.Public().(ed25519.PublicKey)
		return len(sigBody) == ed25519.SignatureSize && ed25519.Verify(pub, p.digest, sigBody), nil
	case t.isECDSA():
		pub := &h.ecKey.PublicKey
		if p.jws {
			n := (pub.Curve.Params().BitSize + 7) / 8
			if len(sigBody) != 2*n {
				return false, nil
			}
			r := new(big.Int).SetBytes(sigBody[:n])
			s := new(big.Int).SetBytes(sigBody[n:])
			return ecdsa.Verify(pub, p.digest, r, s), nil
		}
		return ecdsa.VerifyASN1(pub, p.digest, sigBody), nil
	case p.pkcs1:
		return rsa.VerifyPKCS1v15(&h.rsaKey.PublicKey, p.hash, p.digest, sigBody) == nil, nil
	default:
		return rsa.VerifyPSS(&h.rsaKey.PublicKey, p.hash, p.digest, sigBody, &rsa.PSSOptions{SaltLength: p.saltLen}) == nil, nil
	}
}

// HMAC returns "vault:v<N>:<base64(HMAC(key, input))>" with the version's
// HMACKey (for type hmac: its Secret). algorithm is "" (sha2-256),
// sha2-224, sha2-256, sha2-384, sha2-512, sha3-224, sha3-256, sha3-384 or
// sha3-512. Derivation does not apply to HMAC.
func (h *Handle) HMAC(input []byte, algorithm string) (string, error) {
	mac, err := h.MAC(input, algorithm)
	if err != nil {
		return "", err
	}
	return FormatCiphertext(h.version, mac), nil
}

// MAC is HMAC without the "vault:v<N>:" framing: the raw HMAC.
func (h *Handle) MAC(input []byte, algorithm string) ([]byte, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.hmac(input, algorithm)
}

// VerifyHMAC recomputes the HMAC of input and compares it with macBody
// (the decoded body of an HMAC string) in constant time.
func (h *Handle) VerifyHMAC(input, macBody []byte, algorithm string) (bool, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	mac, err := h.hmac(input, algorithm)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(mac, macBody) == 1, nil
}

func (h *Handle) hmac(input []byte, algorithm string) ([]byte, error) {
	if h.zeroed {
		return nil, errZeroed
	}
	hash, err := hmacHash(algorithm)
	if err != nil {
		return nil, err
	}
	if len(h.hmacKey) == 0 {
		return nil, unsupported("key version %d has no hmac key", h.version)
	}
	m := hmac.New(hash.New, h.hmacKey)
	m.Write(input)
	return m.Sum(nil), nil
}
