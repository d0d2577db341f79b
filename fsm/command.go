package fsm

import (
	"encoding/binary"

	"errors"
	"fmt"
	"github.com/keyraft/keyraft/audit"
)

// OpKind says what an Op does to the record at its key.
type OpKind uint8

const (
	// OpPut stores Value at Key.
	OpPut OpKind = 1
	// OpDelete removes Key.
	OpDelete OpKind = 2
	// OpDeletePrefix removes every record whose key starts with Key.
	OpDeletePrefix OpKind = 3
)

// Op is one write of a Command. Values are barrier ciphertext made by the
// proposing node; the state machine never sees plaintext.
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte
}

// Cond is a precondition of a Command: the record at Key must have been
// last written at Revision (the Raft index of that write); Revision 0
// means the record must not exist. Conds make read-modify-write safe: a
// node prepares a change from its local view and the change commits only
// if nobody else wrote those records in between.
type Cond struct {
	Key      string
	Revision uint64
}

// Command is the payload of one Raft log entry: preconditions, the writes
// that happen when every precondition holds, and the audit events that
// record them. Writes and events commit together or not at all.
type Command struct {
	Conds []Cond
	Ops   []Op
	// Events are encoded audit events (see package audit) with seq,
	// prev_hash and hash unset: Apply chains them.
	Events [][]byte
	// Checkpoint, when set, is a signed audit checkpoint (audit.Checkpoint
	// JSON); Apply stores it only if the signature verifies with the
	// cluster's audit public key and the hash matches the chain.
	Checkpoint []byte
	// CompactAuditTo, when set, drops audit events up to and including
	// this seq from the state; a stored checkpoint must sit exactly there,
	// so the remaining chain still verifies from its signed hash.
	CompactAuditTo uint64

	decoded []*audit.Event // filled by DecodeCommand
	cp      *audit.Checkpoint
}

// Limits enforced by DecodeCommand; a proposer never makes anything larger.
const (
	MaxKeyLen   = 1024
	MaxValueLen = 64 << 20
	maxItems    = 1 << 20
)

// ErrMalformed is returned for a command or snapshot that does not decode.
var ErrMalformed = errors.New("fsm: malformed input")

const commandFormat = 1

// Encode serializes c:
//
//	format(1) | uvarint nconds  | { uvarint len | key | uvarint revision }*
//	          | uvarint nops    | { kind(1) | uvarint len | key | uvarint len | value }*
//	          | uvarint nevents | { uvarint len | event }*
//	          | uvarint len | checkpoint (len 0: none) | uvarint compact-audit-to
func (c *Command) Encode() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	size := 1 + 2*binary.MaxVarintLen64
	for _, cd := range c.Conds {
		size += 2*binary.MaxVarintLen64 + len(cd.Key)
	}
	for _, op := range c.Ops {
		size += 1 + 2*binary.MaxVarintLen64 + len(op.Key) + len(op.Value)
	}
	for _, ev := range c.Events {
		size += binary.MaxVarintLen64 + len(ev)
	}
	size += 2*binary.MaxVarintLen64 + len(c.Checkpoint)
	b := make([]byte, 0, size)
	b = append(b, commandFormat)
	b = binary.AppendUvarint(b, uint64(len(c.Conds)))
	for _, cd := range c.Conds {
		b = appendBytes(b, []byte(cd.Key))
		b = binary.AppendUvarint(b, cd.Revision)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Ops)))
	for _, op := range c.Ops {
		b = append(b, byte(op.Kind))
		b = appendBytes(b, []byte(op.Key))
		b = appendBytes(b, op.Value)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Events)))
	for _, ev := range c.Events {
		b = appendBytes(b, ev)
	}
	b = appendBytes(b, c.Checkpoint)
	b = binary.AppendUvarint(b, c.CompactAuditTo)
	return b, nil
}

// Validate checks the limits and key rules every node will apply. Events
// are only size-checked here: the state machine decodes them strictly in
// DecodeCommand, so a proposer does not pay for decoding its own events.
func (c *Command) Validate() error {
	if len(c.Ops) == 0 && len(c.Events) == 0 && len(c.Checkpoint) == 0 && c.CompactAuditTo == 0 {
		return fmt.Errorf("%w: command has no writes, events or checkpoint", ErrMalformed)
	}
	c.cp = nil
	if len(c.Checkpoint) > 0 {
		cp, err := audit.DecodeCheckpoint(c.Checkpoint)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		c.cp = cp
	}
	for i, ev := range c.Events {
		if len(ev) == 0 || len(ev) > audit.MaxEventSize {
			return fmt.Errorf("%w: event %d is %d bytes (1 to %d)", ErrMalformed, i, len(ev), audit.MaxEventSize)
		}
	}
	for _, cd := range c.Conds {
		if err := validKey(cd.Key); err != nil {
			return err
		}
	}
	for _, op := range c.Ops {
		if err := validKey(op.Key); err != nil {
			return err
		}
		switch op.Kind {
		case OpPut:
			if len(op.Value) > MaxValueLen {
				return fmt.Errorf("%w: value for %q is %d bytes, limit %d", ErrMalformed, op.Key, len(op.Value), MaxValueLen)
			}
		case OpDelete, OpDeletePrefix:
			if len(op.Value) != 0 {
				return fmt.Errorf("%w: delete of %q carries a value", ErrMalformed, op.Key)
			}
		default:
			return fmt.Errorf("%w: unknown op kind %d", ErrMalformed, op.Kind)
		}
	}
	return nil
}

// validKey rejects keys the state machine reserves (those starting with
// the internal prefix byte) and keys outside the size limits.
func validKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("%w: empty key", ErrMalformed)
	case len(k) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes, limit %d", ErrMalformed, len(k), MaxKeyLen)
	case k[0] == internalPrefix:
		return fmt.Errorf("%w: key %q is reserved", ErrMalformed, k)
	}
	return nil
}

// DecodeCommand parses bytes made by Encode. It never panics and rejects
// trailing bytes, oversized fields and reserved keys with ErrMalformed.
func DecodeCommand(b []byte) (*Command, error) {
	d := decoder{b: b}
	if f := d.byte(); f != commandFormat {
		if d.err == nil {
			d.fail("unknown command format %d", f)
		}
		return nil, d.err
	}
	c := &Command{}
	n := d.count(2)
	for i := 0; i < n && d.err == nil; i++ {
		c.Conds = append(c.Conds, Cond{Key: string(d.bytes(MaxKeyLen)), Revision: d.uvarint()})
	}
	n = d.count(3)
	for i := 0; i < n && d.err == nil; i++ {
		kind := OpKind(d.byte())
		key := string(d.bytes(MaxKeyLen))
		val := d.bytes(MaxValueLen)
		if len(val) == 0 {
			val = nil
		}
		c.Ops = append(c.Ops, Op{Kind: kind, Key: key, Value: val})
	}
	n = d.count(1)
	for i := 0; i < n && d.err == nil; i++ {
		c.Events = append(c.Events, d.bytes(audit.MaxEventSize))
	}
	if cp := d.bytes(4096); len(cp) > 0 {
		c.Checkpoint = cp
	}
	c.CompactAuditTo = d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := c.decodeEvents(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeEvents parses the events strictly; proposers may not set the
// fields the state machine assigns.
func (c *Command) decodeEvents() error {
	c.decoded = c.decoded[:0]
	for i, ev := range c.Events {
		e, err := audit.Decode(ev)
		if err != nil {
			return fmt.Errorf("%w: event %d: %v", ErrMalformed, i, err)
		}
		if e.Seq != 0 || e.PrevHash != "" || e.Hash != "" {
			return fmt.Errorf("%w: event %d: seq and hashes are assigned by the state machine", ErrMalformed, i)
		}
		c.decoded = append(c.decoded, e)
	}
	return nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decoder reads length-prefixed fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads an item count; each item needs at least minSize bytes, which
// bounds allocations by the input size.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if d.err == nil && (v > maxItems || v*uint64(minSize) > uint64(len(d.b))) {
		d.fail("count %d exceeds input", v)
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(d.b)) {
		d.fail("field of %d bytes (limit %d, %d left)", n, limit, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
