package transit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// AES key wrap with padding (RFC 5649), the inner layer of Vault's BYOK
// format: the key being imported is wrapped under an ephemeral AES-256
// key, which is itself wrapped with RSA-OAEP under the cluster's wrapping
// key. Written here over crypto/aes because the standard library has no
// key wrap and the algorithm is twenty lines.

// errKWPIntegrity is returned by kwpUnwrap when the integrity check
// (alternative IV, length, padding) fails: a wrong key or altered input.
var errKWPIntegrity = errors.New("AES key wrap integrity check failed")

// kwpAIVPrefix is the constant half of RFC 5649's alternative initial value.
var kwpAIVPrefix = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// kwpMaxInput bounds what is wrapped or unwrapped: far above any key
// (an RSA-4096 PKCS#8 key is about 2.4 KiB), far below the 2^32 of the RFC.
const kwpMaxInput = 64 << 10

// kwpWrap wraps plaintext (1 byte or more) under kek (16, 24 or 32 bytes).
func kwpWrap(kek, plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 || len(plaintext) > kwpMaxInput {
		return nil, errors.New("key wrap input must be between 1 byte and 64 KiB")
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	padded := (len(plaintext) + 7) &^ 7
	out := make([]byte, 8+padded)
	copy(out, kwpAIVPrefix[:])
	binary.BigEndian.PutUint32(out[4:8], uint32(len(plaintext)))
	copy(out[8:], plaintext)
	if padded == 8 {
		// One semiblock: a single AES block encryption of AIV ‖ P.
		b.Encrypt(out, out)
		return out, nil
	}
	kw3394Wrap(b, out)
	return out, nil
}

// kwpUnwrap reverses kwpWrap; it returns errKWPIntegrity when the wrapped
// key was not made with kek (or was altered). The check of the IV, the
// length and the padding does not branch on which part failed.
func kwpUnwrap(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 16 || len(wrapped)%8 != 0 || len(wrapped) > kwpMaxInput+8 {
		return nil, errors.New("wrapped key must be a multiple of 8 bytes, at least 16")
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	buf := append([]byte(nil), wrapped...)
	if len(buf) == 16 {
		b.Decrypt(buf, buf)
	} else {
		kw3394Unwrap(b, buf)
	}
	n := len(buf) - 8 // padded plaintext length
	mli := int(binary.BigEndian.Uint32(buf[4:8]))
	okIV := subtle.ConstantTimeCompare(buf[:4], kwpAIVPrefix[:])
	okLen := subtle.ConstantTimeLessOrEq(n-7, mli) & subtle.ConstantTimeLessOrEq(mli, n)
	if mli > n { // keep the padding check below in range
		mli = n
	}
	var pad byte
	for i := 8 + mli; i < len(buf); i++ {
		pad |= buf[i]
	}
	okPad := subtle.ConstantTimeByteEq(pad, 0)
	if okIV&okLen&okPad != 1 || mli == 0 {
		clear(buf)
		return nil, errKWPIntegrity
	}
	out := append([]byte(nil), buf[8:8+mli]...)
	clear(buf)
	return out, nil
}

// kw3394Wrap runs RFC 3394's wrapping process in place on buf = A ‖ R1..Rn.
func kw3394Wrap(b cipher.Block, buf []byte) {
	n := len(buf)/8 - 1
	var blk [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(blk[:8], buf[:8])
			copy(blk[8:], buf[8*i:8*i+8])
			b.Encrypt(blk[:], blk[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(buf[8*i:8*i+8], blk[8:])
		}
	}
	clear(blk[:])
}

// kw3394Unwrap runs RFC 3394's unwrapping process in place on buf.
func kw3394Unwrap(b cipher.Block, buf []byte) {
	n := len(buf)/8 - 1
	var blk [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(blk[8:], buf[8*i:8*i+8])
			b.Decrypt(blk[:], blk[:])
			copy(buf[:8], blk[:8])
			copy(buf[8*i:8*i+8], blk[8:])
		}
	}
	clear(blk[:])
}
