package transit

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/keyraft/keyraft/keys"
)

// Error is an error with the HTTP status the API answers with. Its
// message is shown to the caller as is, so it never holds key material.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func badRequest(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf(format, args...)}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// userError converts errors from package keys, which are all caused by
// the request, into 400s; anything else passes through.
func userError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, keys.ErrInvalidInput) || errors.Is(err, keys.ErrInvalidCiphertext) || errors.Is(err, keys.ErrUnsupported) {
		return &Error{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	return err
}

// IsUserError reports whether err is the caller's fault (a 4xx).
func IsUserError(err error) bool {
	var e *Error
	return errors.As(userError(err), &e) && e.Status < 500
}
