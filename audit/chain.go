package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// GenesisHash is the prev_hash of the first event: 64 zeros.
var GenesisHash = hex.EncodeToString(make([]byte, sha256.Size))

// MaxEventSize bounds one encoded event.
const MaxEventSize = 64 << 10

// MaxStoredEventSize bounds an event as the log stores it: MaxEventSize
// plus its seq and two hashes.
const MaxStoredEventSize = MaxEventSize + 256

// ErrMalformed is returned for an event that does not decode.
var ErrMalformed = errors.New("audit: malformed event")

// Canonical is the byte string an event's hash covers: its JSON encoding
// with Hash empty. encoding/json writes struct fields in declaration order
// and map keys sorted, so the encoding is the same on every node.
func Canonical(e *Event) ([]byte, error) {
	c := *e
	c.Hash = ""
	return json.Marshal(&c)
}

// ChainHash returns SHA-256(prev_hash ‖ canonical(e)) in hex; prevHash is
// the previous event's hash in hex.
func ChainHash(prevHash string, e *Event) (string, error) {
	canon, err := Canonical(e)
	if err != nil {
		return "", err
	}
	return HashCanonical(prevHash, canon), nil
}

// HashCanonical is ChainHash over an already canonical encoding.
func HashCanonical(prevHash string, canon []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil))
}

// emptyHashTail is how every canonical encoding ends: hash is the last
// field of Event and Canonical leaves it empty.
var emptyHashTail = []byte(`"hash":""}`)

// WithHash turns a canonical encoding into the stored event by filling in
// its hash, which is the same as encoding the event with Hash set.
func WithHash(canon []byte, hash string) ([]byte, error) {
	if !bytes.HasSuffix(canon, emptyHashTail) {
		return nil, fmt.Errorf("audit: canonical encoding does not end with an empty hash")
	}
	out := make([]byte, 0, len(canon)+len(hash))
	out = append(out, canon[:len(canon)-2]...) // up to and including the opening quote
	out = append(out, hash...)
	return append(out, '"', '}'), nil
}

// Decode parses one encoded event strictly: unknown fields, trailing data
// and oversized input are refused.
func Decode(b []byte) (*Event, error) {
	if len(b) > MaxEventSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), MaxEventSize)
	}
	var e Event
	if err := strictUnmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &e, nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// HMAC returns the hex HMAC-SHA256 of value under the cluster's audit key,
// the form in which sensitive values appear in events.
func HMAC(key, value []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(value)
	return formatHMAC(m)
}

const hmacPrefix = "hmac-sha256:"

func formatHMAC(m hash.Hash) string {
	var sum [sha256.Size]byte
	var out [len(hmacPrefix) + 2*sha256.Size]byte
	copy(out[:], hmacPrefix)
	hex.Encode(out[len(hmacPrefix):], m.Sum(sum[:0]))
	return string(out[:])
}

// HMACKey computes HMAC as HMAC(key, value) does, reusing keyed hash
// states: a batch of a thousand items asks for a thousand HMACs, and
// keying a new state each time costs more than the hashing.
type HMACKey struct{ pool sync.Pool }

// NewHMACKey returns an HMACKey for a copy of key.
func NewHMACKey(key []byte) *HMACKey {
	k := bytes.Clone(key)
	return &HMACKey{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

// Sum is HMAC(key, value).
func (k *HMACKey) Sum(value []byte) string {
	m := k.pool.Get().(hash.Hash)
	m.Reset()
	m.Write(value)
	s := formatHMAC(m)
	k.pool.Put(m)
	return s
}

// Problem is the first thing wrong with a chain.
type Problem struct {
	Seq    uint64 // the first bad seq (or the expected one, for a gap)
	Reason string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", p.Seq, p.Reason)
}

// Verifier checks events one at a time, in order. Start it with the
// previous event's seq and hash (0 and GenesisHash for a full log).
type Verifier struct {
	nextSeq  uint64
	prevHash string
	started  bool
}

// NewVerifier returns a verifier that expects the event after (seq, hash).
// For a segment that starts mid-log, pass the prev_hash of its first
// event, taken from a signed checkpoint.
func NewVerifier(afterSeq uint64, afterHash string) *Verifier {
	return &Verifier{nextSeq: afterSeq + 1, prevHash: afterHash, started: true}
}

// Next checks e against the chain so far; it returns a *Problem when the
// event is out of order, missing a predecessor, or edited.
func (v *Verifier) Next(e *Event) error {
	switch {
	case e.Seq < v.nextSeq:
		return &Problem{Seq: e.Seq, Reason: fmt.Sprintf("reordered or duplicated: seq %d after seq %d", e.Seq, v.nextSeq-1)}
	case e.Seq > v.nextSeq:
		return &Problem{Seq: v.nextSeq, Reason: fmt.Sprintf("missing or out of order: the next event has seq %d", e.Seq)}
	case e.PrevHash != v.prevHash:
		return &Problem{Seq: e.Seq, Reason: "prev_hash does not match the previous event's hash (an event before it was edited, removed or reordered)"}
	}
	want, err := ChainHash(v.prevHash, e)
	if err != nil {
		return &Problem{Seq: e.Seq, Reason: err.Error()}
	}
	if !hmac.Equal([]byte(want), []byte(e.Hash)) {
		return &Problem{Seq: e.Seq, Reason: "hash does not match the event's contents (edited)"}
	}
	v.nextSeq++
	v.prevHash = e.Hash
	return nil
}

// Last returns the seq and hash of the last verified event.
func (v *Verifier) Last() (uint64, string) { return v.nextSeq - 1, v.prevHash }
