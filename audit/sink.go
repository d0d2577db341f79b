package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Batch is a run of consecutive committed events exactly as the log
// stores them: each event's JSON on its own line, so every sink writes
// the bytes the chain hashes and no event is encoded again per sink.
type Batch struct {
	First, Last uint64 // seqs of the first and last event
	LastHash    string // hash of the last event
	Count       int
	Lines       []byte // the events' JSON, each line ending in '\n'
}

// Sink delivers committed events outside the cluster (a file, syslog, a
// socket). Write gets batches in seq order, each starting right after the
// sink's position; nil means the sink has taken the whole batch (stored
// it, or for an Acker, sent it). After an error the follower asks a
// Positioner where it stands before it writes again.
type Sink interface {
	Write(b *Batch) error
	Close() error
}

// Position is how far a sink has stored the log: its last event's seq and
// hash (0 and "" for nothing yet).
type Position struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash,omitempty"`
}

// Positioner is a sink that can say how far it has stored the log (a
// file's last whole line, a collector's answer on connect). The follower
// resumes from there rather than from a cursor of its own, so neither a
// node crash nor a collector restart repeats or skips an event.
type Positioner interface {
	Position() (Position, error)
}

// Acker is a sink whose Write returns once a batch is sent, before the far
// end has stored it; Stored is what the far end has confirmed. The
// follower's cursor is Stored, never what was sent.
type Acker interface {
	Stored() Position
}

// Restarter is a sink that keeps two histories apart when the log was
// replaced by a snapshot restore (a file starts a new file, a collector is
// told to).
type Restarter interface {
	Restart() error
}

// Source is the replicated log a sink reads: a node's committed events.
type Source interface {
	// AuditRecords calls fn with each committed event from fromSeq on, in
	// seq order, with its stored JSON (valid only during the call).
	AuditRecords(fromSeq uint64, fn func(seq uint64, event []byte) error) error
	// AuditHeadSeq is the newest committed seq.
	AuditHeadSeq() uint64
	// AuditBaseSeq is the seq through which the log was compacted (0 when
	// it starts at seq 1).
	AuditBaseSeq() uint64
	// AuditSettle returns once this node's log holds every event the
	// cluster had committed when it was called, or an error when this
	// node cannot know that (a follower).
	AuditSettle(ctx context.Context) error
}

// CursorStore keeps a follower's position for a sink that cannot say
// where it stands itself (syslog, a socket without acknowledgements).
type CursorStore interface {
	Load() (Position, error)
	Save(Position) error
}

// SinkStatus is what a follower reports about its sink.
type SinkStatus struct {
	Name      string   `json:"name"`
	Delivered Position `json:"delivered"`
	// Active is false while another node delivers this device.
	Active     bool      `json:"active"`
	LagEvents  uint64    `json:"lag_events"`
	LagSeconds float64   `json:"lag_seconds"`
	LastError  string    `json:"last_error,omitempty"`
	ErrorAt    time.Time `json:"last_error_time,omitzero"`
	// Restarts counts deliveries begun again from the log's start because
	// the log was replaced (restores).
	Restarts int `json:"restarts,omitempty"`
}

// Follower feeds one sink from the committed log. A request never waits
// for it: it reads what is already committed, a batch at a time (at most
// MaxBatch events and MaxBytes), so a slow, stalled or broken sink costs
// one batch of memory and delays nobody but itself. Its cursor moves on
// what the sink confirms (Positioner, Acker), and it begins again from the
// log's start only when the chain shows the log was replaced.
type Follower struct {
	Name   string
	Source Source
	Sink   Sink
	// Cursor keeps the position of a sink that is not a Positioner.
	Cursor CursorStore
	// Active, when set, says whether this node delivers now (a cluster-wide
	// device is delivered by the leader alone); checked before every batch.
	Active func() bool
	// OnDelivered, when set, is told each new delivered position.
	OnDelivered func(Position)
	// Poll is how often to look for new events (default 100ms).
	Poll time.Duration
	// MaxBatch and MaxBytes bound one batch (defaults 4096 events, 1 MiB).
	MaxBatch int
	MaxBytes int
	Logger   hclog.Logger

	mu     sync.Mutex
	status SinkStatus
}

// Status reports the follower's delivered position and lag.
func (f *Follower) Status() SinkStatus {
	f.mu.Lock()
	st := f.status
	f.mu.Unlock()
	st.Name = f.Name
	if head := f.Source.AuditHeadSeq(); head > st.Delivered.Seq {
		st.LagEvents = head - st.Delivered.Seq
		// Seconds: how long the oldest event not delivered has waited.
		f.Source.AuditRecords(st.Delivered.Seq+1, func(_ uint64, b []byte) error {
			var e struct {
				Time time.Time `json:"time"`
			}
			if json.Unmarshal(b, &e) == nil && !e.Time.IsZero() {
				st.LagSeconds = max(0, time.Since(e.Time).Seconds())
			}
			return errStopScan
		})
	}
	return st
}

var errStopScan = errors.New("audit: stop scan")

// errBehind means the sink holds events this node's log does not have yet.
var errBehind = errors.New("audit: waiting for this node's log to catch up")

// errReplaced means the log no longer continues what the sink stored.
var errReplaced = errors.New("audit: the log was replaced")

func (f *Follower) setError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		f.status.LastError = ""
		return
	}
	f.status.LastError, f.status.ErrorAt = err.Error(), time.Now().UTC()
}

func (f *Follower) setDelivered(p Position) {
	f.mu.Lock()
	changed := p != f.status.Delivered
	f.status.Delivered = p
	f.mu.Unlock()
	if changed && f.OnDelivered != nil {
		f.OnDelivered(p)
	}
}

// Run delivers events until ctx ends. Sink errors are retried with
// backoff (up to 5 s between tries); they never stop the follower.
func (f *Follower) Run(ctx context.Context) error {
	if f.Poll == 0 {
		f.Poll = 100 * time.Millisecond
	}
	if f.MaxBatch == 0 {
		f.MaxBatch = 4096
	}
	if f.MaxBytes == 0 {
		f.MaxBytes = 1 << 20
	}
	if f.Logger == nil {
		f.Logger = hclog.NewNullLogger()
	}
	if f.Cursor != nil {
		if p, err := f.Cursor.Load(); err == nil {
			f.setDelivered(p)
		}
	}
	var (
		sent    Position // the last event handed to the sink
		placed  bool     // sent is known (false: ask the sink or the cursor)
		fresh   bool     // placed by the last round: a chain break now is the log's own
		backoff time.Duration
	)
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	fail := func(what string, err error) bool {
		backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
		f.setError(err)
		f.Logger.Warn("audit sink failing; will retry", "sink", f.Name, "during", what, "error", err)
		placed = false
		return wait(backoff)
	}
	for ctx.Err() == nil {
		if f.Active != nil && !f.Active() {
			f.mu.Lock()
			f.status.Active = false
			f.mu.Unlock()
			placed = false
			if !wait(f.Poll) {
				break
			}
			continue
		}
		f.mu.Lock()
		f.status.Active = true
		f.mu.Unlock()
		if !placed {
			p, err := f.place(ctx)
			if errors.Is(err, errBehind) {
				// The sink holds events this node has not applied yet.
				f.setError(err)
				if !wait(max(f.Poll, 100*time.Millisecond)) {
					break
				}
				continue
			}
			if err != nil {
				if ctx.Err() != nil || !fail("resume", err) {
					break
				}
				continue
			}
			sent, placed, fresh = p, true, true
		} else {
			fresh = false
		}
		if a, ok := f.Sink.(Acker); ok {
			f.setDelivered(a.Stored())
		}
		b, prev, err := f.read(sent.Seq)
		if err != nil {
			if !fail("read", err) {
				break
			}
			continue
		}
		if b == nil {
			backoff = 0
			if f.Source.AuditHeadSeq() < sent.Seq && f.Source.AuditSettle(ctx) == nil && f.Source.AuditHeadSeq() < sent.Seq {
				// Settled, and the log is still shorter than what the sink
				// holds: a restore replaced it. place finds out.
				placed = false
			}
			if br, ok := f.Sink.(interface{ Broken() bool }); ok && br.Broken() {
				placed = false // unacknowledged events to send again
			}
			if !wait(f.Poll) {
				break
			}
			continue
		}
		if b.First > sent.Seq+1 {
			f.Logger.Error("audit events were compacted before this sink received them", "sink", f.Name, "from_seq", sent.Seq+1, "to_seq", b.First-1)
		} else if sent.Hash != "" && prev != sent.Hash {
			if fresh {
				if !fail("read", fmt.Errorf("audit: event %d does not follow event %d in this node's log", b.First, sent.Seq)) {
					break
				}
				continue
			}
			// The log changed under the sink: find out whether it was replaced.
			placed = false
			continue
		}
		if err := f.Sink.Write(b); err != nil {
			if !fail("write", err) {
				break
			}
			continue
		}
		backoff = 0
		f.setError(nil)
		sent = Position{Seq: b.Last, Hash: b.LastHash}
		if _, ok := f.Sink.(Acker); ok {
			continue
		}
		if f.Cursor != nil {
			if err := f.Cursor.Save(sent); err != nil {
				f.Logger.Warn("audit cursor not saved", "sink", f.Name, "error", err)
			}
		}
		f.setDelivered(sent)
	}
	return nil
}

// place finds where the sink stands, checks that the log still continues
// it, and begins again from the log's start when it does not.
func (f *Follower) place(ctx context.Context) (Position, error) {
	var p Position
	var err error
	switch s := f.Sink.(type) {
	case Positioner:
		p, err = s.Position()
	default:
		if f.Cursor != nil {
			p, err = f.Cursor.Load()
		}
	}
	if err != nil {
		return Position{}, err
	}
	switch err := f.check(ctx, p); {
	case errors.Is(err, errReplaced):
		f.Logger.Error("audit log replaced (a snapshot restore); delivering the new log from its start",
			"sink", f.Name, "delivered_up_to", p.Seq, "why", strings.TrimPrefix(err.Error(), errReplaced.Error()+": "))
		if r, ok := f.Sink.(Restarter); ok {
			if err := r.Restart(); err != nil {
				return Position{}, fmt.Errorf("starting over after a restore: %w", err)
			}
		}
		f.mu.Lock()
		f.status.Restarts++
		f.mu.Unlock()
		p = Position{}
		if f.Cursor != nil {
			if err := f.Cursor.Save(p); err != nil {
				return Position{}, err
			}
		}
		if _, ok := f.Sink.(Positioner); ok {
			// Ask again: the sink may have reconnected to say where it is.
			if p, err = f.Sink.(Positioner).Position(); err != nil {
				return Position{}, err
			}
			if p.Seq != 0 {
				return Position{}, fmt.Errorf("audit: the sink still holds seq %d after being told the log was replaced", p.Seq)
			}
		}
	case err != nil:
		return Position{}, err
	}
	if _, ok := f.Sink.(Acker); !ok {
		f.setDelivered(p)
	}
	return p, nil
}

// check reports errReplaced when the log does not hold the event at p
// with p's hash. Compaction, checkpoints and a node that is behind never
// count as a replacement: an event missing from this node's log counts
// only after the node has caught up with the cluster.
func (f *Follower) check(ctx context.Context, p Position) error {
	if p.Seq == 0 || p.Seq <= f.Source.AuditBaseSeq() {
		return nil // nothing to compare with (compacted events)
	}
	hash, found, err := f.hashAt(p.Seq)
	if err != nil {
		return err
	}
	if !found {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f.Source.AuditSettle(sctx)
		cancel()
		if err != nil {
			// Only a node that knows it has the whole log (a leader
			// after a barrier) may call a missing event a replacement;
			// any other waits until its log reaches the sink's seq.
			return fmt.Errorf("%w: this node's log ends at seq %d, the sink holds %d (%v)", errBehind, f.Source.AuditHeadSeq(), p.Seq, err)
		}
		if hash, found, err = f.hashAt(p.Seq); err != nil {
			return err
		}
		if !found {
			if p.Seq <= f.Source.AuditBaseSeq() {
				return nil
			}
			return fmt.Errorf("%w: the log ends at seq %d, before the %d this sink holds", errReplaced, f.Source.AuditHeadSeq(), p.Seq)
		}
	}
	if p.Hash != "" && hash != p.Hash {
		return fmt.Errorf("%w: event %d in the log is not the one this sink holds", errReplaced, p.Seq)
	}
	return nil
}

func (f *Follower) hashAt(seq uint64) (string, bool, error) {
	var hash string
	found := false
	err := f.Source.AuditRecords(seq, func(s uint64, b []byte) error {
		if s == seq {
			found = true
			_, hash, _ = chainFields(b)
		}
		return errStopScan
	})
	if err != nil && err != errStopScan {
		return "", false, err
	}
	return hash, found, nil
}

// read returns the next batch after seq (nil when there is none) and the
// prev_hash of its first event.
func (f *Follower) read(after uint64) (*Batch, string, error) {
	b := &Batch{}
	var prev string
	var lastLine []byte
	err := f.Source.AuditRecords(after+1, func(seq uint64, line []byte) error {
		if b.Count > 0 && (b.Count >= f.MaxBatch || len(b.Lines)+len(line) >= f.MaxBytes) {
			return errStopScan
		}
		if b.Count == 0 {
			b.First = seq
			prev, _, _ = chainFields(line)
		} else if seq != b.Last+1 {
			return fmt.Errorf("audit: the log skips from seq %d to %d", b.Last, seq)
		}
		start := len(b.Lines)
		b.Lines = append(append(b.Lines, line...), '\n')
		lastLine = b.Lines[start : len(b.Lines)-1]
		b.Last = seq
		b.Count++
		return nil
	})
	if err != nil && err != errStopScan {
		return nil, "", err
	}
	if b.Count == 0 {
		return nil, "", nil
	}
	_, b.LastHash, _ = chainFields(lastLine)
	return b, prev, nil
}

// chainFields reads an event's prev_hash and hash from its JSON.
func chainFields(line []byte) (prev, hash string, err error) {
	var e struct {
		PrevHash string `json:"prev_hash"`
		Hash     string `json:"hash"`
	}
	err = json.Unmarshal(line, &e)
	return e.PrevHash, e.Hash, err
}

// lineSeq reads an event's seq and hash from its JSON line.
func lineSeq(line []byte) (Position, error) {
	var e struct {
		Seq  uint64 `json:"seq"`
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(line, &e); err != nil {
		return Position{}, err
	}
	if e.Seq == 0 {
		return Position{}, errors.New("no seq")
	}
	return Position{Seq: e.Seq, Hash: e.Hash}, nil
}

// FileCursor is a CursorStore in a node-local file holding "seq hash".
type FileCursor string

// Load implements CursorStore; a missing file is position 0.
func (c FileCursor) Load() (Position, error) {
	b, err := os.ReadFile(string(c))
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("audit: reading cursor: %w", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 || len(fields) > 2 {
		return Position{}, fmt.Errorf("audit: cursor file %s is corrupt", string(c))
	}
	n, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("audit: cursor file %s is corrupt: %v", string(c), err)
	}
	p := Position{Seq: n}
	if len(fields) == 2 {
		p.Hash = fields[1]
	}
	return p, nil
}

// Save implements CursorStore (write a temporary file, then rename).
func (c FileCursor) Save(p Position) error {
	tmp := string(c) + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(p.Seq, 10)+" "+p.Hash+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, string(c))
}
