package audit

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one request's record. It never holds plaintext, ciphertext,
// tokens or key material: only names, outcomes, identities and HMACs.
//
// Seq, PrevHash and Hash are assigned by the state machine when the event
// commits; a proposer leaves them zero.
type Event struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Node       string    `json:"node"`
	RequestID  string    `json:"request_id"`
	Identity   string    `json:"identity,omitempty"` // token accessor or certificate subject
	RemoteAddr string    `json:"remote_addr,omitempty"`
	Operation  string    `json:"operation"` // e.g. "transit/encrypt", "sys/unseal"
	Method     string    `json:"method,omitempty"`
	Path       string    `json:"path,omitempty"`
	Key        string    `json:"key,omitempty"`
	KeyVersion int       `json:"key_version,omitempty"`
	Outcome    string    `json:"outcome"` // allowed | denied | error
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	// StateChange marks an event committed in the same Raft entry as the
	// change it records: the key's history is made of these.
	StateChange bool `json:"state_change,omitempty"`
	// Details carries facts specific to an operation, e.g. the audit head a
	// snapshot restore replaced.
	Details map[string]string `json:"details,omitempty"`
	// HMACs holds HMAC-SHA256 values of sensitive request fields (plaintext,
	// ciphertext, context, token), keyed by field name.
	HMACs    map[string]string `json:"hmacs,omitempty"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`

	committedSeq uint64 // set once the event is in the replicated log
}

// Outcomes.
const (
	Allowed = "allowed"
	Denied  = "denied"
	Failed  = "error"
)

// Recorder takes an event and returns once it is durably recorded. A
// request that used key material answers only after Record returns nil;
// when Record fails the request fails with 503 and carries no result.
type Recorder interface {
	Record(ctx context.Context, e *Event) error
}

type ctxKey struct{}

// WithEvent returns a context carrying the request's event, so that a
// state change made for the request commits the event in the same Raft
// entry (see cluster.Node.Apply).
func WithEvent(ctx context.Context, e *Event) context.Context {
	return context.WithValue(ctx, ctxKey{}, e)
}

// EventFrom returns the event a context carries, or nil.
func EventFrom(ctx context.Context) *Event {
	e, _ := ctx.Value(ctxKey{}).(*Event)
	return e
}

// MarkCommitted records that the event is already in the log (committed
// with a state change), so a Recorder must not write it again.
func (e *Event) MarkCommitted(seq uint64) { e.committedSeq = seq }

// Committed reports the seq the event was committed at, or 0.
func (e *Event) Committed() uint64 { return e.committedSeq }

// MaxPathInEvent bounds the request path an event keeps.
const MaxPathInEvent = 1024

// Bounds of the other fields an event takes from a request, so that every
// event has a fixed ceiling whatever the request held: a stranger's
// request costs the replicated log a few KiB at most.
const (
	maxShortField   = 128  // method, operation, request ID, remote address, node
	maxNameField    = 512  // key name, identity
	maxErrorInEvent = 1024 // the answer's error text
	maxDetails      = 32   // entries of Details
	maxDetailKey    = 64
	maxDetailValue  = 1024
)

// clip shortens s to at most n bytes, cut at a rune boundary, with "…" to
// show that it was cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Encode returns the event's JSON for proposing, with seq and hashes
// cleared. It always fits MaxEventSize, so a request is always recorded:
// every field that comes from a request is cut to its bound (the path to
// MaxPathInEvent), Details to 32 entries, and when the HMACs of a large
// batch do not fit they are replaced by one HMAC-of-HMACs per field and a
// count (an investigator can match the whole batch, not an item), or, as
// a last resort, by their count alone.
func (e *Event) Encode() ([]byte, error) {
	c := *e
	c.Seq, c.PrevHash, c.Hash = 0, "", ""
	c.Path = clip(c.Path, MaxPathInEvent)
	c.Method = clip(c.Method, maxShortField)
	c.Operation = clip(c.Operation, maxShortField)
	c.RequestID = clip(c.RequestID, maxShortField)
	c.RemoteAddr = clip(c.RemoteAddr, maxShortField)
	c.Node = clip(c.Node, maxShortField)
	c.Outcome = clip(c.Outcome, maxShortField)
	c.Key = clip(c.Key, maxNameField)
	c.Identity = clip(c.Identity, maxNameField)
	c.Error = clip(c.Error, maxErrorInEvent)
	if len(c.Details) > 0 {
		c.Details = clipDetails(c.Details)
	}
	var b []byte
	var err error
	if hmacsAtLeast(c.HMACs) <= MaxEventSize {
		b, err = json.Marshal(&c)
		if err != nil || len(b) <= MaxEventSize {
			return b, err
		}
	} // else the full encoding surely exceeds the limit: skip it
	c.HMACs = summarizeHMACs(c.HMACs)
	b, err = json.Marshal(&c)
	if err == nil && len(b) > MaxEventSize {
		c.HMACs = map[string]string{"truncated": strconv.Itoa(len(e.HMACs))}
		b, err = json.Marshal(&c)
	}
	if err == nil && len(b) > MaxEventSize {
		// Only text that JSON escapes (control characters, invalid
		// UTF-8: up to 6 bytes a byte) gets here: keep a short prefix of
		// every field, so that the event surely fits.
		const last = 256
		for _, f := range []*string{&c.Path, &c.Method, &c.Operation, &c.RequestID, &c.RemoteAddr,
			&c.Node, &c.Outcome, &c.Key, &c.Identity, &c.Error} {
			*f = clip(*f, last)
		}
		c.Details = map[string]string{"truncated": strconv.Itoa(len(e.Details))}
		b, err = json.Marshal(&c)
	}
	return b, err
}

// clipDetails bounds Details: the first maxDetails keys in order, each key
// and value cut to its bound, and a "truncated" entry with the number of
// entries left out.
func clipDetails(in map[string]string) map[string]string {
	keys := make([]string, 0, len(in))
	fits := len(in) <= maxDetails
	for k, v := range in {
		keys = append(keys, k)
		fits = fits && len(k) <= maxDetailKey && len(v) <= maxDetailValue
	}
	if fits {
		return in
	}
	sort.Strings(keys)
	out := make(map[string]string, maxDetails+1)
	for i, k := range keys {
		if i == maxDetails {
			out["truncated"] = strconv.Itoa(len(keys) - maxDetails)
			break
		}
		out[clip(k, maxDetailKey)] = clip(in[k], maxDetailValue)
	}
	return out
}

// hmacsAtLeast is a lower bound of the bytes m takes in JSON.
func hmacsAtLeast(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v) + 6 // two pairs of quotes, a colon, a comma
	}
	return n
}

// summarizeHMACs keeps top-level HMACs and folds batch items' HMACs into
// one SHA-256 over them (in item order) per field name.
func summarizeHMACs(in map[string]string) map[string]string {
	out := map[string]string{}
	items := map[string][]string{}
	for k, v := range in {
		if i := strings.Index(k, "]."); strings.HasPrefix(k, "batch_input[") && i > 0 {
			field := k[i+2:]
			items[field] = append(items[field], k+"="+v)
			continue
		}
		out[k] = v
	}
	for field, list := range items {
		sort.Strings(list)
		h := sha256.New()
		for _, s := range list {
			h.Write([]byte(s))
			h.Write([]byte{'\n'})
		}
		out["batch_input[*]."+field] = fmt.Sprintf("sha256-of-%d-hmacs:%x", len(list), h.Sum(nil))
	}
	return out
}
