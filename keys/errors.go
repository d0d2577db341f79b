package keys

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error caused by the request wraps exactly one of
// them (test with errors.Is); server-side failures (a zeroed Handle, failed
// key generation) wrap none. The message of a returned error is written for the
// API user: it says what is wrong and never contains key material or input
// data.
var (
	// ErrInvalidInput: a parameter, option or input is not acceptable
	// (unknown type or algorithm, missing context, wrong prehashed length...).
	ErrInvalidInput = errors.New("keys: invalid input")
	// ErrInvalidCiphertext: a ciphertext, signature or HMAC string is
	// malformed, or a ciphertext failed authentication (tampered, wrong key
	// version, wrong context or wrong associated data). The message says which.
	ErrInvalidCiphertext = errors.New("keys: invalid ciphertext")
	// ErrUnsupported: the key type cannot do the requested operation.
	ErrUnsupported = errors.New("keys: operation not supported by key type")
)

// errZeroed is returned by every operation on a Handle after Zero. It is an
// internal (server-side) condition, so it wraps none of the sentinels.
var errZeroed = errors.New("keys: key handle has been zeroed")

// keyError carries a user-facing message and the sentinel it belongs to, so
// that Error() stays short ("context is required for a derived key") while
// errors.Is(err, ErrInvalidInput) still works.
type keyError struct {
	kind error
	msg  string
}

func (e *keyError) Error() string { return e.msg }
func (e *keyError) Unwrap() error { return e.kind }

func invalidInput(format string, args ...any) error {
	return &keyError{kind: ErrInvalidInput, msg: fmt.Sprintf(format, args...)}
}

func unsupported(format string, args ...any) error {
	return &keyError{kind: ErrUnsupported, msg: fmt.Sprintf(format, args...)}
}

// invalidCiphertext builds "invalid ciphertext: <reason>".
func invalidCiphertext(reason string) error {
	return &keyError{kind: ErrInvalidCiphertext, msg: "invalid ciphertext: " + reason}
}

// invalidSignature builds "invalid signature: <reason>"; it wraps
// ErrInvalidCiphertext because signatures and HMACs share the ciphertext
// string format.
func invalidSignature(reason string) error {
	return &keyError{kind: ErrInvalidCiphertext, msg: "invalid signature: " + reason}
}
