package forward

import "errors"

var (
	// ErrConnLost: the connection died after the request was written, so
	// the outcome is unknown — the peer may have run it (for a forwarded
	// Raft command: the leader may have applied it). Treat it like a Raft
	// apply timeout: never assume the command failed.
	ErrConnLost = errors.New("forward: connection lost, outcome unknown")

	// ErrUnavailable: nothing was sent. Dialing failed, or the connection
	// broke before the request was written. Retrying is safe.
	ErrUnavailable = errors.New("forward: peer unavailable, request not sent")

	// ErrRemote is wrapped by every *RemoteError.
	ErrRemote = errors.New("forward: remote handler failed")

	// ErrFrameTooLarge: a payload is over the frame limit. Returned by
	// Client.Call before anything is sent when the request is too large;
	// an oversized frame from a peer is a protocol violation that closes
	// the connection.
	ErrFrameTooLarge = errors.New("forward: frame too large")

	// ErrClosed: the Client or Server was closed.
	ErrClosed = errors.New("forward: closed")
)

// RemoteError is the error text a peer's handler returned. It unwraps to
// ErrRemote. Whether the peer changed anything before failing is the
// handler's business; this package only carries the text.
type RemoteError struct {
	Msg string
}

func (e *RemoteError) Error() string { return "forward: remote: " + e.Msg }

// Unwrap returns ErrRemote.
func (e *RemoteError) Unwrap() error { return ErrRemote }
