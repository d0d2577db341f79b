package fsm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/plugins"
)

// internalPrefix starts the keys the state machine keeps for itself;
// commands may not write them.
const internalPrefix = 0x00

var (
	appliedKey   = []byte{internalPrefix, 'a', 'p', 'p', 'l', 'i', 'e', 'd'}
	auditHeadKey = []byte("\x00audit/head")
	// auditEventPrefix + 20-digit seq holds each chained event.
	auditEventPrefix = []byte("\x00audit/e/")
	// auditCheckpointPrefix + 20-digit seq holds each signed checkpoint.
	auditCheckpointPrefix = []byte("\x00audit/cp/")
	// auditBaseKey holds the checkpoint the chain starts from after a
	// compaction (absent: the chain starts at seq 1 from the genesis hash).
	auditBaseKey = []byte("\x00audit/base")
)

// ErrBadCheckpoint is the result of a checkpoint that does not verify.
var ErrBadCheckpoint = errors.New("fsm: audit checkpoint does not verify")

// ErrBadCompaction is the result of a compaction that would leave the
// chain unverifiable (no checkpoint at that seq, or nothing to drop).
var ErrBadCompaction = errors.New("fsm: audit compaction refused")

// AuditHead is the last chained audit event: every node agrees on it.
type AuditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

func auditEventKey(seq uint64) []byte { return seqKey(auditEventPrefix, seq) }

func seqKey(prefix []byte, seq uint64) []byte {
	return fmt.Appendf(append([]byte(nil), prefix...), "%020d", seq)
}

// ConflictError is the result of a command whose precondition failed: the
// record at Key changed after the proposer read it. None of the command's
// writes happened (but see RecordPurge).
type ConflictError struct{ Key string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("fsm: record %q changed concurrently", e.Key)
}

// ErrConflict matches every *ConflictError with errors.Is.
var ErrConflict = errors.New("fsm: conflict")

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Result is what Apply returns for each log entry (raft.ApplyFuture.Response).
type Result struct {
	// Index is the Raft index of the entry; it is the new revision of
	// every record the command wrote.
	Index uint64
	// Err is nil, a *ConflictError, or wraps ErrMalformed. Either way every
	// node reached the same outcome.
	Err error
	// FirstSeq and LastSeq are the audit seqs the entry's events got
	// (zero when it had none or failed).
	FirstSeq, LastSeq uint64
}

// FSM is keyraft's replicated state machine: an ordered map from record
// keys to barrier-ciphertext values, each stamped with the Raft index that
// last wrote it. It implements raft.FSM and raft.BatchingFSM.
//
// Apply is deterministic: it reads only the log entry and the store. It
// never decrypts, so a sealed node applies the log like any other.
//
// The store remembers the last applied index in the same write as the
// entries' effects, so a restarted node skips entries it already applied
// instead of rebuilding from a snapshot (run Raft with
// NoSnapshotRestoreOnStart), and replays from its log the entries the
// store had not received (see WriteBehind).
type FSM struct {
	store plugins.Storage

	mu      sync.Mutex
	applied uint64
	head    AuditHead
	waiters map[chan struct{}]uint64
}

var _ raft.BatchingFSM = (*FSM)(nil)

// New returns a state machine over store, resuming from the applied index
// recorded in it.
func New(store plugins.Storage) (*FSM, error) {
	f := &FSM{store: store, waiters: map[chan struct{}]uint64{}}
	v, err := store.Get(appliedKey)
	if err != nil {
		return nil, fmt.Errorf("fsm: reading applied index: %w", err)
	}
	if v != nil {
		if len(v) != 8 {
			return nil, fmt.Errorf("%w: applied index record of %d bytes", ErrMalformed, len(v))
		}
		f.applied = binary.BigEndian.Uint64(v)
	}
	head, err := readHead(store)
	if err != nil {
		return nil, err
	}
	f.head = head
	return f, nil
}

func readHead(r plugins.Reader) (AuditHead, error) {
	h := AuditHead{Hash: audit.GenesisHash}
	v, err := r.Get(auditHeadKey)
	if err != nil || v == nil {
		return h, err
	}
	if err := json.Unmarshal(v, &h); err != nil {
		return h, fmt.Errorf("%w: audit head: %v", ErrMalformed, err)
	}
	return h, nil
}

// AuditHead returns the seq and hash of the newest chained event.
func (f *FSM) AuditHead() AuditHead {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

// AuditEvents calls fn with each chained event (its stored JSON) from
// seq fromSeq on, in order, until fn returns an error or the events end.
func (f *FSM) AuditEvents(fromSeq uint64, fn func(seq uint64, event []byte) error) error {
	return f.store.ScanFrom(auditEventPrefix, auditEventKey(fromSeq), func(k, v []byte) error {
		var seq uint64
		if _, err := fmt.Sscanf(string(k[len(auditEventPrefix):]), "%d", &seq); err != nil {
			return fmt.Errorf("%w: audit event key %q", ErrMalformed, k)
		}
		return fn(seq, v)
	})
}

// AppliedIndex is the index of the last entry applied to the store.
func (f *FSM) AppliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// WaitApplied returns a channel closed once index has been applied.
func (f *FSM) WaitApplied(index uint64) <-chan struct{} {
	ch := make(chan struct{})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied >= index {
		close(ch)
	} else {
		f.waiters[ch] = index
	}
	return ch
}

// Get returns the value and revision of the record at key; a missing
// record is (nil, 0, nil).
func (f *FSM) Get(key string) ([]byte, uint64, error) {
	v, err := f.store.Get([]byte(key))
	if err != nil || v == nil {
		return nil, 0, err
	}
	return splitRecord(v)
}

// Revision returns the revision of the record at key (0 when absent),
// reading only the record's 8-byte header when the storage can.
func (f *FSM) Revision(key string) (uint64, error) {
	var v []byte
	var err error
	if hr, ok := f.store.(plugins.HeadReader); ok {
		v, err = hr.GetHead([]byte(key), 8)
	} else {
		v, err = f.store.Get([]byte(key))
	}
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) < 8 {
		return 0, fmt.Errorf("%w: record of %d bytes", ErrMalformed, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Scan calls fn for every record whose key has the prefix, in key order.
func (f *FSM) Scan(prefix string, fn func(key string, value []byte, rev uint64) error) error {
	if prefix == "" {
		return fmt.Errorf("%w: empty scan prefix", ErrMalformed)
	}
	return f.store.Scan([]byte(prefix), func(k, v []byte) error {
		val, rev, err := splitRecord(v)
		if err != nil {
			return err
		}
		return fn(string(k), val, rev)
	})
}

// A stored record is revision (8 bytes, big endian) | value.
func splitRecord(v []byte) ([]byte, uint64, error) {
	if len(v) < 8 {
		return nil, 0, fmt.Errorf("%w: record of %d bytes", ErrMalformed, len(v))
	}
	return v[8:], binary.BigEndian.Uint64(v), nil
}

func joinRecord(rev uint64, val []byte) []byte {
	out := make([]byte, 8+len(val))
	binary.BigEndian.PutUint64(out, rev)
	copy(out[8:], val)
	return out
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch implements raft.BatchingFSM: the whole batch is one storage
// write. Later entries see the effects of earlier ones through an overlay.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	var batch []plugins.Mutation
	ov := overlay{}
	last := uint64(0)
	applied := f.AppliedIndex()
	head := f.AuditHead()
	headMoved := false
	for i, l := range logs {
		res := &Result{Index: l.Index}
		out[i] = res
		if l.Index <= applied {
			continue // already in the store from before a restart
		}
		last = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, err := DecodeCommand(l.Data)
		if err != nil {
			res.Err = err
			continue
		}
		if err := f.checkConds(cmd.Conds, ov); err != nil {
			res.Err = err
			if v, ok := f.stalePurge(cmd, ov, batch); ok {
				batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: []byte(RecordPurge), Value: joinRecord(l.Index, v)})
				ov.put(RecordPurge, l.Index)
			}
			continue
		}
		// Every check comes before the first mutation of the entry, so a
		// failed entry adds nothing to the batch.
		if cmd.cp != nil {
			if err := f.checkCheckpoint(cmd.cp); err != nil {
				res.Err = err
				continue
			}
		}
		var newBase *audit.Checkpoint
		if cmd.CompactAuditTo != 0 {
			cp, err := f.checkCompaction(cmd.CompactAuditTo, head)
			if err != nil {
				res.Err = err
				continue
			}
			newBase = cp
		}
		for _, op := range cmd.Ops {
			switch op.Kind {
			case OpPut:
				batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: []byte(op.Key), Value: joinRecord(l.Index, op.Value)})
				ov.put(op.Key, l.Index)
			case OpDelete:
				batch = append(batch, plugins.Mutation{Kind: plugins.Delete, Key: []byte(op.Key)})
				ov.put(op.Key, 0)
			case OpDeletePrefix:
				batch = append(batch, plugins.Mutation{Kind: plugins.DeletePrefix, Key: []byte(op.Key)})
				ov.deletePrefix(op.Key)
			}
		}
		for _, e := range cmd.decoded {
			chained, err := chain(&head, e)
			if err != nil {
				panic(fmt.Sprintf("fsm: chaining audit event at index %d: %v", l.Index, err))
			}
			batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: auditEventKey(head.Seq), Value: chained})
			headMoved = true
		}
		res.FirstSeq, res.LastSeq = head.Seq-uint64(len(cmd.decoded))+1, head.Seq
		if len(cmd.decoded) == 0 {
			res.FirstSeq, res.LastSeq = 0, 0
		}
		if cmd.cp != nil {
			cb, _ := json.Marshal(cmd.cp)
			batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: seqKey(auditCheckpointPrefix, cmd.cp.Seq), Value: cb})
		}
		if newBase != nil {
			bb, _ := json.Marshal(newBase)
			batch = append(batch,
				plugins.Mutation{Kind: plugins.DeleteRange, Key: auditEventKey(0), Value: auditEventKey(newBase.Seq + 1)},
				plugins.Mutation{Kind: plugins.DeleteRange, Key: seqKey(auditCheckpointPrefix, 0), Value: seqKey(auditCheckpointPrefix, newBase.Seq)},
				plugins.Mutation{Kind: plugins.Put, Key: auditBaseKey, Value: bb})
		}
	}
	if headMoved {
		hb, _ := json.Marshal(head)
		batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: auditHeadKey, Value: hb})
	}
	if last == 0 {
		return out
	}
	idx := make([]byte, 8)
	binary.BigEndian.PutUint64(idx, last)
	batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: appliedKey, Value: idx})
	if err := f.store.Write(batch); err != nil {
		// The log is committed; a node that cannot store it must not go on
		// with a state that differs from its peers. Restarting replays it.
		panic(fmt.Sprintf("fsm: storage write failed at index %d: %v", last, err))
	}
	f.mu.Lock()
	f.head = head
	f.mu.Unlock()
	f.setApplied(last)
	return out
}

// checkCheckpoint verifies a checkpoint against the public key and the
// stored chain. The checkpointed event must already be stored (not in the
// pending batch), which the leader guarantees by checkpointing the head it
// has applied.
func (f *FSM) checkCheckpoint(cp *audit.Checkpoint) error {
	pub, _, err := f.Get(RecordAuditPublicKey)
	if err != nil {
		panic(fmt.Sprintf("fsm: storage read failed: %v", err))
	}
	if !cp.Verify(pub) {
		return fmt.Errorf("%w: bad signature", ErrBadCheckpoint)
	}
	ev, err := f.store.Get(auditEventKey(cp.Seq))
	if err != nil {
		panic(fmt.Sprintf("fsm: storage read failed: %v", err))
	}
	if ev == nil {
		return fmt.Errorf("%w: no event %d", ErrBadCheckpoint, cp.Seq)
	}
	e, err := audit.Decode(ev)
	if err != nil || e.Hash != cp.Hash {
		return fmt.Errorf("%w: hash differs from event %d", ErrBadCheckpoint, cp.Seq)
	}
	return nil
}

// checkCompaction allows dropping events up to seq when a stored
// checkpoint sits exactly at seq, past the current base and not past the
// head. Like every check it runs before the entry adds any mutation.
func (f *FSM) checkCompaction(seq uint64, head AuditHead) (*audit.Checkpoint, error) {
	base, err := f.AuditBase()
	if err != nil {
		return nil, err
	}
	if base != nil && seq <= base.Seq {
		return nil, fmt.Errorf("%w: events up to %d are already compacted", ErrBadCompaction, base.Seq)
	}
	if seq > head.Seq {
		return nil, fmt.Errorf("%w: seq %d is past the head %d", ErrBadCompaction, seq, head.Seq)
	}
	v, err := f.store.Get(seqKey(auditCheckpointPrefix, seq))
	if err != nil {
		panic(fmt.Sprintf("fsm: storage read failed: %v", err))
	}
	if v == nil {
		return nil, fmt.Errorf("%w: no signed checkpoint at seq %d", ErrBadCompaction, seq)
	}
	return audit.DecodeCheckpoint(v)
}

// AuditBase returns the checkpoint the stored chain starts from after a
// compaction, or nil when it starts at seq 1.
func (f *FSM) AuditBase() (*audit.Checkpoint, error) {
	v, err := f.store.Get(auditBaseKey)
	if err != nil || v == nil {
		return nil, err
	}
	return audit.DecodeCheckpoint(v)
}

// AuditCheckpoints calls fn with each stored checkpoint from seq on.
func (f *FSM) AuditCheckpoints(fromSeq uint64, fn func(cp *audit.Checkpoint) error) error {
	return f.store.ScanFrom(auditCheckpointPrefix, seqKey(auditCheckpointPrefix, fromSeq), func(_, v []byte) error {
		cp, err := audit.DecodeCheckpoint(v)
		if err != nil {
			return err
		}
		return fn(cp)
	})
}

// chain assigns e the next seq after head, links and hashes it, advances
// head and returns the event's stored form.
func chain(head *AuditHead, e *audit.Event) ([]byte, error) {
	e.Seq = head.Seq + 1
	e.PrevHash = head.Hash
	e.Hash = ""
	canon, err := audit.Canonical(e)
	if err != nil {
		return nil, err
	}
	h := audit.HashCanonical(head.Hash, canon)
	e.Hash = h
	head.Seq, head.Hash = e.Seq, h
	// The stored form is the canonical JSON with the hash filled in: hash
	// is the last field, so it is spliced in rather than encoded again.
	return audit.WithHash(canon, h)
}

func (f *FSM) setApplied(index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = index
	for ch, want := range f.waiters {
		if want <= index {
			close(ch)
			delete(f.waiters, ch)
		}
	}
}

func (f *FSM) checkConds(conds []Cond, ov overlay) error {
	for _, c := range conds {
		rev, ok := ov.get(c.Key)
		if !ok {
			_, r, err := f.Get(c.Key)
			if err != nil {
				panic(fmt.Sprintf("fsm: storage read failed: %v", err))
			}
			rev = r
		}
		if rev != c.Revision {
			return &ConflictError{Key: c.Key}
		}
	}
	return nil
}

// stalePurge reports whether cmd, refused for a conflict, may carry key
// material that a purge removed from the state, and if so returns the
// value RecordPurge keeps. That is when cmd puts a value and one of its
// conditions read a record at a revision below the newest purge request
// that has changed since (rewritten or deleted, before or after the
// request): cmd was prepared before the purge, as a rotation racing a
// key's destruction is. A stale write that conflicts for another reason
// costs a rare extra purge, never a missed one.
func (f *FSM) stalePurge(cmd *Command, ov overlay, batch []plugins.Mutation) ([]byte, bool) {
	puts := false
	for _, op := range cmd.Ops {
		puts = puts || (op.Kind == OpPut && len(op.Value) > 0)
	}
	if !puts {
		return nil, false
	}
	purgeRev, ok := ov.get(RecordPurge)
	if !ok {
		var err error
		if _, purgeRev, err = f.Get(RecordPurge); err != nil {
			// Every replica must decide the same: never guess.
			panic(fmt.Sprintf("fsm: storage read failed: %v", err))
		}
	}
	if purgeRev == 0 {
		return nil, false
	}
	stale := false
	for _, c := range cmd.Conds {
		rev, ok := ov.get(c.Key)
		if !ok {
			_, r, err := f.Get(c.Key)
			if err != nil {
				panic(fmt.Sprintf("fsm: storage read failed: %v", err))
			}
			rev = r
		}
		// Read before the purge and changed since: prepared from the
		// pre-purge record, whatever happened to it afterwards (a change
		// after the purge must not hide it). A refused write that read an
		// old record for another reason costs one extra purge round;
		// records the hot path rewrites are read after the last purge.
		if c.Revision != 0 && c.Revision < purgeRev && rev != c.Revision {
			stale = true
			break
		}
	}
	if !stale {
		return nil, false
	}
	// The value as last written: in this batch, or in the store.
	for i := len(batch) - 1; i >= 0; i-- {
		if m := batch[i]; m.Kind == plugins.Put && string(m.Key) == RecordPurge {
			return m.Value[8:], true
		}
	}
	v, _, err := f.Get(RecordPurge)
	if err != nil {
		panic(fmt.Sprintf("fsm: storage read failed: %v", err))
	}
	return v, true
}

// overlay tracks revisions written earlier in the same batch.
type overlay struct {
	revs     map[string]uint64
	prefixes []string
}

func (o *overlay) put(key string, rev uint64) {
	if o.revs == nil {
		o.revs = map[string]uint64{}
	}
	o.revs[key] = rev
}

func (o *overlay) deletePrefix(p string) {
	for k := range o.revs {
		if len(k) >= len(p) && k[:len(p)] == p {
			o.revs[k] = 0
		}
	}
	o.prefixes = append(o.prefixes, p)
}

func (o *overlay) get(key string) (uint64, bool) {
	if rev, ok := o.revs[key]; ok {
		return rev, true
	}
	for _, p := range o.prefixes {
		if len(key) >= len(p) && key[:len(p)] == p {
			return 0, true
		}
	}
	return 0, false
}

// Snapshot format: magic | { uvarint len | key | uvarint len | stored record }* | end marker
var snapshotMagic = []byte("keyraft-fsm-snapshot-v1\n")

// IsSnapshot reports whether head, the first bytes of a file, starts a
// snapshot stream (its magic).
func IsSnapshot(head []byte) bool { return bytes.HasPrefix(head, snapshotMagic) }

// Snapshot implements raft.FSM. It opens a consistent storage view at the
// current applied index; Persist streams it while applies continue.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	v, err := f.store.View()
	if err != nil {
		return nil, err
	}
	return &snapshot{view: v}, nil
}

type snapshot struct{ view plugins.View }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriterSize(sink, 1<<16)
	err := func() error {
		if _, err := w.Write(snapshotMagic); err != nil {
			return err
		}
		var buf []byte
		if err := s.view.Scan(nil, func(k, v []byte) error {
			buf = appendBytes(appendBytes(buf[:0], k), v)
			_, err := w.Write(buf)
			return err
		}); err != nil {
			return err
		}
		if _, err := w.Write([]byte{0}); err != nil { // zero-length key ends the stream
			return err
		}
		return w.Flush()
	}()
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() { s.view.Close() }

// Restore implements raft.FSM: the store is replaced, in one write, by the
// snapshot's records. A malformed snapshot leaves the store untouched.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	batch := []plugins.Mutation{{Kind: plugins.DeletePrefix, Key: nil}}
	applied, err := parseSnapshot(rc, func(k, v []byte) {
		batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: k, Value: v})
	})
	if err != nil {
		return err
	}
	if err := f.store.Write(batch); err != nil {
		return fmt.Errorf("fsm: restoring snapshot: %w", err)
	}
	if fl, ok := f.store.(interface{ Flush() error }); ok {
		// Raft will not replay what the snapshot covers: it must be in
		// the store before Restore returns.
		if err := fl.Flush(); err != nil {
			return fmt.Errorf("fsm: restoring snapshot: %w", err)
		}
	}
	head, err := readHead(f.store)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.applied = applied
	f.head = head
	f.mu.Unlock()
	f.setApplied(applied)
	return nil
}

// ValidateSnapshot reads a whole snapshot stream as Restore would, without
// writing anything, and returns the applied index it records. Use it
// before handing an operator's file to Raft: Raft treats a failing
// Restore as fatal.
func ValidateSnapshot(r io.Reader) (applied uint64, err error) {
	return parseSnapshot(r, func(k, v []byte) {})
}

// ParseSnapshotRecords calls fn with every stored record of a snapshot
// (key and stored value: revision header then value) and returns the
// applied index it records.
func ParseSnapshotRecords(r io.Reader, fn func(k, v []byte)) (uint64, error) {
	return parseSnapshot(r, fn)
}

// maxSnapshotIndex bounds the applied index a snapshot may claim: Raft
// places a restore after it, and an index near 2^64 would wrap.
const maxSnapshotIndex = 1 << 62

// checkSnapshotRecord checks one record the way Restore and New will read
// it, so that a snapshot that passes validation cannot fail inside Raft's
// restore (which is fatal) or leave a store that does not open.
func checkSnapshotRecord(k, v []byte) error {
	switch {
	case bytes.Equal(k, auditHeadKey):
		var h AuditHead
		if err := json.Unmarshal(v, &h); err != nil || len(h.Hash) != 64 {
			return fmt.Errorf("%w: audit head record", ErrMalformed)
		}
	case bytes.Equal(k, auditBaseKey), bytes.HasPrefix(k, auditCheckpointPrefix):
		if _, err := audit.DecodeCheckpoint(v); err != nil {
			return fmt.Errorf("%w: audit checkpoint record: %v", ErrMalformed, err)
		}
	case bytes.HasPrefix(k, auditEventPrefix):
		if _, err := audit.Decode(v); err != nil {
			return fmt.Errorf("%w: audit event record: %v", ErrMalformed, err)
		}
	case len(k) > 0 && k[0] == internalPrefix:
		return fmt.Errorf("%w: unknown internal record %q", ErrMalformed, k)
	default:
		if _, _, err := splitRecord(v); err != nil {
			return err
		}
	}
	return nil
}

func parseSnapshot(rc io.Reader, fn func(k, v []byte)) (uint64, error) {
	r := bufio.NewReaderSize(rc, 1<<16)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil || !bytes.Equal(magic, snapshotMagic) {
		return 0, fmt.Errorf("%w: not a keyraft snapshot", ErrMalformed)
	}
	var applied uint64
	for {
		k, err := readField(r, MaxKeyLen+1)
		if err != nil {
			return 0, err
		}
		if len(k) == 0 {
			break
		}
		v, err := readField(r, MaxValueLen+8)
		if err != nil {
			return 0, err
		}
		if bytes.Equal(k, appliedKey) {
			if len(v) != 8 {
				return 0, fmt.Errorf("%w: applied index record of %d bytes", ErrMalformed, len(v))
			}
			applied = binary.BigEndian.Uint64(v)
			if applied >= maxSnapshotIndex {
				return 0, fmt.Errorf("%w: applied index %d is implausible", ErrMalformed, applied)
			}
		} else if err := checkSnapshotRecord(k, v); err != nil {
			return 0, err
		}
		fn(k, v)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return 0, fmt.Errorf("%w: data after the end of the snapshot", ErrMalformed)
	}
	return applied, nil
}

func readField(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("%w: truncated snapshot", ErrMalformed)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%w: snapshot field of %d bytes", ErrMalformed, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: truncated snapshot", ErrMalformed)
	}
	return b, nil
}
