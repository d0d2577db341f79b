package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"time"
)

// Version is one version of a key: its secret material. The caller
// serializes it with encoding/json and encrypts the whole record under the
// barrier; it is never written anywhere by this package.
type Version struct {
	Version      int       `json:"version"`
	CreationTime time.Time `json:"creation_time"`
	// Secret is the key material proper: the symmetric key of an AEAD type,
	// the 32-byte seed of an ed25519 key, the PKCS#8 DER private key of an
	// ecdsa or rsa key, the HMAC key of a key of type hmac.
	Secret []byte `json:"secret"`
	// HMACKey is a separate 32-byte key used by HMAC on every type except
	// hmac (which uses Secret).
	HMACKey []byte `json:"hmac_key"`
}

const (
	hmacKeyLen        = 32
	defaultHMACKeyLen = 32
	minHMACKeySize    = 16
	maxHMACKeySize    = 512
)

// GenerateVersion makes fresh key material of type t with crypto/rand.
// version must be at least 1; now becomes CreationTime. keySize is the key
// length in bytes of a key of type hmac (0 means 32; allowed 16..512) and
// must be 0 for every other type.
func GenerateVersion(t Type, version int, now time.Time, keySize int) (*Version, error) {
	if !t.valid() {
		_, err := ParseType(string(t))
		return nil, err
	}
	if version < 1 || version > maxVersion {
		return nil, invalidInput("invalid key version %d: must be between 1 and %d", version, maxVersion)
	}
	if t != HMAC && keySize != 0 {
		return nil, invalidInput("key_size is only valid for hmac keys")
	}
	v := &Version{Version: version, CreationTime: now}
	var err error
	switch {
	case t.IsAEAD() || t == Ed25519:
		v.Secret = randomBytes(t.symmetricKeySize())
	case t == HMAC:
		if keySize == 0 {
			keySize = defaultHMACKeyLen
		}
		if keySize < minHMACKeySize || keySize > maxHMACKeySize {
			return nil, invalidInput("invalid key_size %d: must be between %d and %d bytes", keySize, minHMACKeySize, maxHMACKeySize)
		}
		v.Secret = randomBytes(keySize)
	case t.isECDSA():
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.GenerateKey(curveOf(t), rand.Reader); err == nil {
			v.Secret, err = x509.MarshalPKCS8PrivateKey(k)
		}
	case t.isRSA():
		var k *rsa.PrivateKey
		if k, err = rsa.GenerateKey(rand.Reader, t.rsaBits()); err == nil {
			v.Secret, err = x509.MarshalPKCS8PrivateKey(k)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", t, err)
	}
	v.HMACKey = randomBytes(hmacKeyLen)
	return v, nil
}

// Zero overwrites Secret and HMACKey with zeros. The Version is unusable
// afterwards.
func (v *Version) Zero() {
	if v == nil {
		return
	}
	clear(v.Secret)
	clear(v.HMACKey)
}

// randomBytes returns n bytes from crypto/rand, which never fails (it
// crashes the program irrecoverably if the OS cannot supply randomness).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func curveOf(t Type) elliptic.Curve {
	switch t {
	case ECDSAP256:
		return elliptic.P256()
	case ECDSAP384:
		return elliptic.P384()
	case ECDSAP521:
		return elliptic.P521()
	}
	return nil
}
