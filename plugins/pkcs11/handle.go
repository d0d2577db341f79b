package pkcs11

import (
	"errors"
	"fmt"

	"github.com/keyraft/keyraft/plugins/sdk"
)

// A handle is what the node stores for a key version of this backend:
//
//	0x01 | key type code | CKA_ID (16 random bytes)
//
// It names the token object and binds its type, so a handle made for an
// HMAC key is refused for encryption before the token is asked.
const (
	handleVersion = 1
	idSize        = 16
	handleSize    = 2 + idSize
)

// keyType is a key type this backend offers.
type keyType struct {
	code byte
	name string
	ops  []sdk.Operation
}

var (
	aesType  = keyType{1, sdk.KeyAES256GCM96, []sdk.Operation{sdk.OpEncrypt, sdk.OpDecrypt}}
	edType   = keyType{2, sdk.KeyEd25519, []sdk.Operation{sdk.OpSign, sdk.OpVerify}}
	hmacType = keyType{3, sdk.KeyHMACSHA256, []sdk.Operation{sdk.OpHMAC}}
)

func (kt keyType) supports(op sdk.Operation) bool {
	for _, o := range kt.ops {
		if o == op {
			return true
		}
	}
	return false
}

// ErrHandle is wrapped by the errors of a handle that does not parse.
var ErrHandle = errors.New("pkcs11 plugin: malformed key handle")

func makeHandle(kt keyType, id []byte) []byte {
	h := make([]byte, 0, handleSize)
	h = append(h, handleVersion, kt.code)
	return append(h, id...)
}

// parseHandle splits a handle into its key type and CKA_ID. The id
// aliases h.
func parseHandle(h []byte) (keyType, []byte, error) {
	if len(h) != handleSize {
		return keyType{}, nil, fmt.Errorf("%w: %d bytes, want %d", ErrHandle, len(h), handleSize)
	}
	if h[0] != handleVersion {
		return keyType{}, nil, fmt.Errorf("%w: version %d", ErrHandle, h[0])
	}
	switch h[1] {
	case aesType.code:
		return aesType, h[2:], nil
	case edType.code:
		return edType, h[2:], nil
	case hmacType.code:
		return hmacType, h[2:], nil
	}
	return keyType{}, nil, fmt.Errorf("%w: unknown key type code %d", ErrHandle, h[1])
}
