// Package audit defines the record every request leaves behind and the
// Recorder that a request waits on before it answers.
//
// The foundation records events in the node's log; the replicated,
// hash-chained log that commits each event through Raft before the
// response goes out plugs in behind the same Recorder interface, so the
// request path does not change when it lands.
package audit

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Event is one request's record. It never holds plaintext, ciphertext,
// tokens or key material: only names, outcomes and identities.
type Event struct {
	Time       time.Time `json:"time"`
	Node       string    `json:"node"`
	RequestID  string    `json:"request_id"`
	Identity   string    `json:"identity,omitempty"` // token accessor
	RemoteAddr string    `json:"remote_addr"`
	Operation  string    `json:"operation"` // e.g. "encrypt", "sys/unseal"
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Key        string    `json:"key,omitempty"`
	KeyVersion int       `json:"key_version,omitempty"`
	Outcome    string    `json:"outcome"` // allowed | denied | error
	Status     int       `json:"status"`
	Error      string    `json:"error,omitempty"`
}

// Recorder takes an event and returns once it is durably recorded. A
// request that used key material answers only after Record returns nil;
// when Record fails the request fails with 503 and carries no result.
type Recorder interface {
	Record(ctx context.Context, e *Event) error
}

// LogRecorder writes each event as one structured line to a logger.
type LogRecorder struct{ Logger hclog.Logger }

// Record implements Recorder.
func (r LogRecorder) Record(_ context.Context, e *Event) error {
	r.Logger.Debug("request", "request_id", e.RequestID, "op", e.Operation, "path", e.Path,
		"key", e.Key, "identity", e.Identity, "remote", e.RemoteAddr, "outcome", e.Outcome,
		"status", e.Status, "error", e.Error)
	return nil
}
