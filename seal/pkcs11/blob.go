package pkcs11

import (
	"fmt"

	ipk "github.com/keyraft/keyraft/internal/pkcs11"
	"github.com/keyraft/keyraft/seal"
)

// Blob layout, version 1 (all lengths in bytes):
//
//	version(1)=0x01 | mechanism(1) | label length(1) | key label |
//	    AES-GCM : IV(12) | ciphertext | tag(16)
//	    RSA-OAEP: ciphertext (exactly the modulus length)
//
// Mechanism bytes: 1 CKM_AES_GCM (96-bit IV, 128-bit tag), 2
// CKM_RSA_PKCS_OAEP with SHA-256 and MGF1-SHA-256, 3 CKM_RSA_PKCS_OAEP
// with SHA-1 and MGF1-SHA-1.
//
// For AES-GCM the additional authenticated data is gcmAADPrefix followed
// by the header (version, mechanism, label length, label), so a blob
// whose header was edited does not authenticate.
const (
	blobVersion  = 0x01
	gcmIVSize    = ipk.GCMIVSize
	gcmTagBits   = ipk.GCMTagBits
	gcmTagSize   = ipk.GCMTagSize
	maxPlaintext = 4096 // far above a 32-byte root key; bounds what reaches the HSM

	minRSACiphertext = 128  // 1024-bit modulus
	maxRSACiphertext = 1024 // 8192-bit modulus
)

// gcmAADPrefix binds every AES-GCM blob to its purpose.
var gcmAADPrefix = []byte("keyraft-root-key")

// ErrBlob is wrapped by Unwrap's errors for a blob that is not a
// well-formed version-1 PKCS#11 seal blob. It wraps seal.ErrDecrypt.
var ErrBlob = fmt.Errorf("%w: malformed pkcs11 seal blob", seal.ErrDecrypt)

// blob is a parsed seal blob. Its slices alias the parsed input.
type blob struct {
	mech  mechanism
	label string
	iv    []byte // AES-GCM only
	ct    []byte // ciphertext (with the GCM tag appended)
}

// header returns the bytes before the IV / ciphertext; they are the
// AES-GCM AAD suffix.
func (b *blob) header() []byte {
	h := make([]byte, 0, 3+len(b.label))
	h = append(h, blobVersion, byte(b.mech), byte(len(b.label)))
	return append(h, b.label...)
}

// aad is the AES-GCM additional authenticated data of b.
func (b *blob) aad() []byte {
	return append(append([]byte(nil), gcmAADPrefix...), b.header()...)
}

func (b *blob) marshal() []byte {
	out := b.header()
	out = append(out, b.iv...)
	return append(out, b.ct...)
}

// parseBlob checks data strictly against the version-1 layout. It never
// panics; its errors wrap ErrBlob.
func parseBlob(data []byte) (*blob, error) {
	if len(data) < 3 {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the header", ErrBlob, len(data))
	}
	if data[0] != blobVersion {
		return nil, fmt.Errorf("%w: unknown version 0x%02x", ErrBlob, data[0])
	}
	b := &blob{mech: mechanism(data[1])}
	if !b.mech.valid() {
		return nil, fmt.Errorf("%w: unknown mechanism %d", ErrBlob, data[1])
	}
	n := int(data[2])
	if n == 0 {
		return nil, fmt.Errorf("%w: empty key label", ErrBlob)
	}
	rest := data[3:]
	if len(rest) < n {
		return nil, fmt.Errorf("%w: key label truncated", ErrBlob)
	}
	b.label, rest = string(rest[:n]), rest[n:]
	if b.mech == mechAESGCM {
		if len(rest) < gcmIVSize {
			return nil, fmt.Errorf("%w: IV truncated", ErrBlob)
		}
		b.iv, rest = rest[:gcmIVSize], rest[gcmIVSize:]
		if len(rest) <= gcmTagSize || len(rest) > maxPlaintext+gcmTagSize {
			return nil, fmt.Errorf("%w: AES-GCM ciphertext is %d bytes, want %d to %d", ErrBlob, len(rest), gcmTagSize+1, maxPlaintext+gcmTagSize)
		}
	} else {
		if len(rest) < minRSACiphertext || len(rest) > maxRSACiphertext {
			return nil, fmt.Errorf("%w: RSA-OAEP ciphertext is %d bytes, want %d to %d", ErrBlob, len(rest), minRSACiphertext, maxRSACiphertext)
		}
	}
	b.ct = rest
	return b, nil
}
