package sdk

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyraft/keyraft/plugins"
)

// ErrProtocol marks an answer from a plugin that breaks the contract
// (results missing, keys out of order, a message that does not decode):
// the call fails with it instead of passing garbage on.
var ErrProtocol = errors.New("plugin answered outside the contract")

// ErrViewNotFound is returned for a view id the plugin does not know: the
// view was closed, or the plugin process that held it has restarted.
var ErrViewNotFound = errors.New("storage: view not open")

// RemoteError is an error returned by the backend inside the plugin.
type RemoteError struct {
	Code codes.Code
	Msg  string
}

func (e *RemoteError) Error() string { return e.Msg }

// TransportError is a failure to reach the plugin or to get its answer:
// connection lost, call cancelled or past its deadline. The host tells a
// crash, a timeout and a restart apart from it.
type TransportError struct {
	Code codes.Code
	Err  error
}

func (e *TransportError) Error() string { return e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// toStatus turns a backend's error into the gRPC status sent back.
func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, plugins.ErrStorageClosed):
		return status.Error(codes.FailedPrecondition, plugins.ErrStorageClosed.Error())
	case errors.Is(err, ErrViewNotFound):
		return status.Error(codes.NotFound, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unknown, err.Error())
}

// fromStatus turns what a gRPC call returned into the error the caller
// sees: the contract's sentinels, a RemoteError, or a TransportError.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not from gRPC: a context error or one of ours.
		return &TransportError{Code: status.Code(err), Err: err}
	}
	switch st.Code() {
	case codes.FailedPrecondition:
		if st.Message() == plugins.ErrStorageClosed.Error() {
			return plugins.ErrStorageClosed
		}
	case codes.NotFound:
		return fmt.Errorf("%w (%s)", ErrViewNotFound, st.Message())
	case codes.Internal:
		// A message that does not decode, or a backend that broke the
		// contract (the server checks its answers): garbage, not a crash.
		return protocolErrorf("%s", st.Message())
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.DataLoss:
		return &TransportError{Code: st.Code(), Err: err}
	case codes.Unimplemented:
		return &RemoteError{Code: st.Code(), Msg: "plugin does not implement this contract: " + st.Message()}
	}
	return &RemoteError{Code: st.Code(), Msg: st.Message()}
}
