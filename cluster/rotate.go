package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/seal"
)

// Barrier keyring rotation (Vault's sys/rotate).
//
// RotateKeyring adds a term to the keyring stored at core/keyring (wrapped
// by the root key, so it is a raw write, not a barrier value) and, in the
// same entry, opens the re-encryption job in core/keyring-rewrap. Every
// node loads the new keyring once the entry applies: the apply path wakes
// keyringLoop when an entry names the keyring, and the loop compares the
// stored keyring's revision with the one the barrier holds and reloads
// with the root key the node keeps while unsealed.
// Old terms stay in the keyring, so nothing becomes unreadable.
//
// The leader then re-encrypts every barrier value made with an older term
// under the new one, 64 records per conditional entry: each record is
// expected at the revision it was read at, so a concurrent write wins and
// the record is read again. The job's progress lives in the clear record
// core/keyring-rewrap (counts and term numbers, no secret), written in the
// same entries as the records it counts: every node reports the same
// progress, and a new leader resumes a job the old one did not finish.

const (
	// rewrapBatch and rewrapBatchBytes bound one entry of the job.
	rewrapBatch      = 64
	rewrapBatchBytes = 4 << 20
	// rewrapTries is how often a batch is read again after a concurrent
	// write won one of its records.
	rewrapTries = 10
	// rewrapPasses is how many scans the job makes: a later scan finds
	// values a node encrypted with the old term before it reloaded.
	rewrapPasses = 5
	// rotateTries is how often RotateKeyring retries when the keyring
	// changed under it (another rotation, or a lagging follower).
	rotateTries = 5
)

// RotationStatus is the progress of re-encrypting the barrier's values
// after the latest rotation. Total counts the values found with an older
// term; Done those handled (re-encrypted, or changed or deleted meanwhile).
type RotationStatus struct {
	Term     uint32    `json:"term"`
	Total    int       `json:"total"`
	Done     int       `json:"done"`
	Running  bool      `json:"running"`
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started_at,omitzero"`
	Finished time.Time `json:"finished_at,omitzero"`
}

// errRewrapStopped ends a job that another leader, a newer rotation or an
// unseal will resume or replace; it is not the job's failure.
var errRewrapStopped = errors.New("cluster: re-encryption stopped")

// RotateKeyring installs a new barrier keyring term cluster-wide and
// starts re-encrypting older values under it on the leader. It returns the
// new term once this node's barrier uses it; other nodes follow as they
// apply the entry. It returns ErrSealed, ErrNotInitialized, an
// *fsm.ConflictError when the keyring kept changing under it, or an Apply
// error. The request's audit event (if ctx carries one) commits with it.
func (n *Node) RotateKeyring(ctx context.Context) (uint32, error) {
	for try := 1; ; try++ {
		term, err := n.rotateOnce(ctx)
		if err == nil {
			if err := n.reloadKeyring(); err != nil {
				return term, err
			}
			return term, nil
		}
		if !errors.Is(err, fsm.ErrConflict) || try == rotateTries {
			return 0, err
		}
		// This node's view was stale (or a rotation raced): wait for it to
		// apply more before reading the keyring again.
		ch := n.applied.wait()
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-n.closed:
			t.Stop()
			return 0, ErrClosed
		}
		t.Stop()
	}
}

func (n *Node) rotateOnce(ctx context.Context) (uint32, error) {
	rootKey := n.rootKeyCopy()
	if rootKey == nil || n.barrier.Sealed() {
		return 0, ErrSealed
	}
	defer clear(rootKey)
	blob, rev, err := n.fsm.Get(fsm.RecordKeyring)
	if err != nil {
		return 0, err
	}
	if blob == nil {
		return 0, ErrNotInitialized
	}
	kr, err := seal.UnwrapKeyring(rootKey, blob)
	if err != nil {
		return 0, fmt.Errorf("cluster: opening the stored keyring: %w", err)
	}
	defer kr.Zero()
	now := time.Now().UTC()
	term, err := kr.AddTerm(now)
	if err != nil {
		return 0, err
	}
	newBlob, err := seal.WrapKeyring(rootKey, kr)
	if err != nil {
		return 0, err
	}
	progress, _ := json.Marshal(RotationStatus{Term: term, Running: true, Started: now})
	if ev := audit.EventFrom(ctx); ev != nil && ev.Committed() == 0 {
		d := maps.Clone(ev.Details)
		if d == nil {
			d = map[string]string{}
		}
		d["term"] = strconv.FormatUint(uint64(term), 10)
		ev.Details = d
	}
	// The keyring is wrapped by the root key, not by the barrier: a raw
	// write, like Init's, expected at the revision it was read at.
	_, err = n.Apply(ctx, &fsm.Command{
		Conds: []fsm.Cond{{Key: fsm.RecordKeyring, Revision: rev}},
		Ops: []fsm.Op{
			{Kind: fsm.OpPut, Key: fsm.RecordKeyring, Value: newBlob},
			{Kind: fsm.OpPut, Key: fsm.RecordKeyringRewrap, Value: progress},
		},
	})
	if err != nil {
		return 0, err
	}
	n.log.Info("rotated the barrier keyring", "term", term)
	return term, nil
}

// rootKeyCopy returns a copy of the root key (the caller clears it), or
// nil while sealed.
func (n *Node) rootKeyCopy() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.rootKey == nil {
		return nil
	}
	return bytes.Clone(n.rootKey)
}

// KeyStatus reports the barrier's active term and when it was installed
// (Vault's sys/key-status), as this node uses it. It returns ErrSealed.
func (n *Node) KeyStatus() (seal.KeyStatus, error) { return n.barrier.KeyStatus() }

// RotationStatus reports the progress of the latest rotation's
// re-encryption, the same on every node. Before any rotation it is the
// active term with nothing to do. It returns ErrNotReady while the node
// catches up after a restart.
func (n *Node) RotationStatus() (RotationStatus, error) {
	if !n.CaughtUp() {
		return RotationStatus{}, ErrNotReady
	}
	st, _, err := n.readRotationStatus()
	if err == nil && st.Term == 0 {
		st.Term = n.barrier.ActiveTerm()
	}
	return st, err
}

func (n *Node) readRotationStatus() (RotationStatus, uint64, error) {
	var st RotationStatus
	v, rev, err := n.fsm.Get(fsm.RecordKeyringRewrap)
	if err != nil || v == nil {
		return st, 0, err
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, 0, fmt.Errorf("cluster: reading %s: %w", fsm.RecordKeyringRewrap, err)
	}
	return st, rev, nil
}

// kickKeyring asks keyringLoop to look at the keyring now.
func (n *Node) kickKeyring() {
	select {
	case n.keyringKick <- struct{}{}:
	default:
	}
}

// reloadKeyring loads the stored keyring into the barrier when it is not
// the one the barrier holds (a rotation, or a restore, applied). While
// sealed there is nothing to do: unsealing reads the stored keyring.
func (n *Node) reloadKeyring() error {
	// The common case, nothing changed, costs one header read and no lock.
	if rev, err := n.fsm.Revision(fsm.RecordKeyring); err != nil || rev == n.keyringRev.Load() {
		return err
	}
	n.sealMu.Lock()
	defer n.sealMu.Unlock()
	if n.barrier.Sealed() {
		return nil
	}
	rev, err := n.fsm.Revision(fsm.RecordKeyring)
	if err != nil || rev == n.keyringRev.Load() || rev == n.keyringBadRev {
		return err
	}
	blob, rev, err := n.fsm.Get(fsm.RecordKeyring)
	if err != nil || blob == nil {
		return err
	}
	// A rekey elsewhere rewrapped the keyring under a new root key.
	n.adoptBarrierRootKey()
	rootKey := n.rootKeyCopy()
	if rootKey == nil {
		return nil
	}
	defer clear(rootKey)
	if err := n.barrier.Reload(rootKey, blob); err != nil {
		if errors.Is(err, seal.ErrSealed) {
			return nil
		}
		// Not this root key's keyring (a restore from another cluster,
		// which seals the node next): do not try this revision again.
		n.keyringBadRev = rev
		n.log.Error("the stored barrier keyring does not open with this node's root key", "revision", rev, "error", err)
		return fmt.Errorf("cluster: loading the rotated keyring: %w", err)
	}
	n.keyringRev.Store(rev)
	n.log.Info("loaded the barrier keyring", "term", n.barrier.ActiveTerm(), "revision", rev)
	return nil
}

// keyringMarker is in every command that writes core/keyring or
// core/keyring-rewrap.
var keyringMarker = []byte(fsm.RecordKeyring)

// noteKeyringWrite runs on Raft's apply path: when an applied command
// may have written the keyring or the job status, it wakes keyringLoop.
// A byte search over the entry, no decoding, no lock: a false positive (a
// value that happens to hold the name) only costs the loop a look.
func (n *Node) noteKeyringWrite(logs []*raft.Log) {
	for _, l := range logs {
		if l.Type == raft.LogCommand && bytes.Contains(l.Data, keyringMarker) {
			n.kickKeyring()
			return
		}
	}
}

// keyringLoop runs for the node's life. When woken (an applied entry
// wrote the keyring or the job status, a restore, an unseal, the end of a
// job) or once a second, it reloads the keyring when the stored one
// changed, and on the leader starts the re-encryption job when one is
// open (the tick is how a new leader finds a job to resume). The apply
// path only signals it: nothing here slows Raft down.
func (n *Node) keyringLoop() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var seenRev uint64 // revision of core/keyring-rewrap last read
	running := false   // whether it said a job is open
	for {
		if err := n.reloadKeyring(); err != nil && !n.isClosed() {
			n.log.Debug("keyring reload", "error", err)
		}
		if n.IsLeader() && !n.barrier.Sealed() && n.CaughtUp() && !n.rewrapActive.Load() {
			if rev, err := n.fsm.Revision(fsm.RecordKeyringRewrap); err == nil && rev != seenRev {
				st, rev, err := n.readRotationStatus()
				if err == nil {
					seenRev, running = rev, st.Running
				}
			}
			if running && time.Now().UnixNano() >= n.rewrapAfter.Load() && n.rewrapActive.CompareAndSwap(false, true) {
				go n.runRewrap()
			}
		}
		select {
		case <-n.keyringKick:
		case <-tick.C:
		case <-n.closed:
			return
		}
	}
}

func (n *Node) isClosed() bool {
	select {
	case <-n.closed:
		return true
	default:
		return false
	}
}

// runRewrap runs the re-encryption job until it finishes or has to stop.
// A job that stops is resumed from its recorded progress: at once when a
// newer rotation superseded it, after a pause when it could not go on
// (sealed, no longer leader: the new leader takes it up), after a growing
// pause when something failed.
func (n *Node) runRewrap() {
	defer n.kickKeyring() // look again: a newer rotation may wait
	defer n.rewrapActive.Store(false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := n.rewrap(ctx)
	pause := time.Duration(0)
	switch {
	case err == nil:
		n.rewrapFailures = 0
	case errors.Is(err, errRewrapSuperseded):
		n.log.Info("barrier re-encryption superseded by a newer rotation")
	case rewrapPaused(ctx, err):
		n.log.Info("barrier re-encryption paused", "reason", err)
		pause = time.Second
	default:
		n.rewrapFailures++
		pause = min(time.Second<<min(n.rewrapFailures, 6), time.Minute)
		n.log.Error("barrier re-encryption failed; retrying", "error", err, "in", pause)
	}
	n.rewrapAfter.Store(time.Now().Add(pause).UnixNano())
}

// errRewrapSuperseded: a newer rotation opened its own job.
var errRewrapSuperseded = fmt.Errorf("%w: superseded", errRewrapStopped)

// rewrapPaused reports errors that stop the job without it failing: it
// resumes when the node is unsealed or leads again.
func rewrapPaused(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, errRewrapStopped) || errors.Is(err, ErrSealed) ||
		errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) || errors.Is(err, ErrClosed)
}

// rewrap is the job: scan for values older than the rotation's term,
// re-encrypt them in conditional batches, record progress with each batch
// and, at the end, the outcome with an audit event.
func (n *Node) rewrap(ctx context.Context) error {
	st, progRev, err := n.readRotationStatus()
	if err != nil || !st.Running {
		return err
	}
	st.Error = "" // a failure of an earlier try is cleared by the next batch
	if err := n.reloadKeyring(); err != nil {
		return err
	}
	if active := n.barrier.ActiveTerm(); active < st.Term {
		return fmt.Errorf("%w: the barrier holds term %d, the rotation made %d", errRewrapStopped, active, st.Term)
	}
	n.log.Info("re-encrypting barrier values", "term", st.Term, "done", st.Done)
	failed := map[string]bool{}
	for pass := 0; pass < rewrapPasses; pass++ {
		keys, err := n.staleRecords(st.Term, failed)
		if err != nil {
			return n.noteRewrapError(ctx, st, progRev, err)
		}
		if len(keys) == 0 {
			break
		}
		st.Total = st.Done + len(keys)
		for len(keys) > 0 {
			if !n.IsLeader() {
				return ErrNotLeader
			}
			taken, rev, err := n.rewrapBatch(ctx, &st, progRev, keys, failed)
			if err != nil {
				return n.noteRewrapError(ctx, st, progRev, err)
			}
			keys, progRev = keys[taken:], rev
		}
	}
	st.Running, st.Finished = false, time.Now().UTC()
	if len(failed) > 0 {
		st.Error = fmt.Sprintf("%d values could not be decrypted and keep their old term (see the leader's log)", len(failed))
	}
	if err := n.finishRewrap(ctx, st, progRev); err != nil {
		return err
	}
	n.log.Info("barrier values re-encrypted", "term", st.Term, "values", st.Total, "failed", len(failed))
	return nil
}

// rewrapBatch re-encrypts up to one batch from the start of keys and
// records the progress in the same entry. It returns how many keys it
// handled and the progress record's new revision.
func (n *Node) rewrapBatch(ctx context.Context, st *RotationStatus, progRev uint64, keys []string, failed map[string]bool) (int, uint64, error) {
	for try := 1; ; try++ {
		cmd := &fsm.Command{Conds: []fsm.Cond{{Key: fsm.RecordKeyringRewrap, Revision: progRev}}}
		taken, size := 0, 0
		for _, k := range keys {
			if taken == rewrapBatch || size >= rewrapBatchBytes {
				break
			}
			taken++
			ct, rev, err := n.fsm.Get(k)
			if err != nil {
				return 0, 0, err
			}
			if ct == nil {
				continue // deleted meanwhile
			}
			fresh, err := n.barrier.Rewrap([]byte(k), ct, st.Term)
			switch {
			case errors.Is(err, seal.ErrSealed):
				return 0, 0, err
			case err != nil:
				if !failed[k] {
					failed[k] = true
					n.log.Error("cannot re-encrypt a barrier value; it keeps its old term", "key", k, "error", err)
				}
				continue
			case fresh == nil:
				continue // rewritten under a current term meanwhile
			}
			cmd.Conds = append(cmd.Conds, fsm.Cond{Key: k, Revision: rev})
			cmd.Ops = append(cmd.Ops, fsm.Op{Kind: fsm.OpPut, Key: k, Value: fresh})
			size += len(fresh)
		}
		next := *st
		next.Done += taken
		b, _ := json.Marshal(next)
		cmd.Ops = append(cmd.Ops, fsm.Op{Kind: fsm.OpPut, Key: fsm.RecordKeyringRewrap, Value: b})
		if n.rewrapHook != nil {
			n.rewrapHook(try)
		}
		res, err := n.Apply(ctx, cmd)
		if err == nil {
			*st = next
			return taken, res.Index, nil
		}
		var ce *fsm.ConflictError
		if !errors.As(err, &ce) {
			return 0, 0, err
		}
		if ce.Key == fsm.RecordKeyringRewrap {
			// A newer rotation opened its own job (which covers this one's
			// values too), or another leader moved this one on.
			return 0, 0, errRewrapSuperseded
		}
		if try == rewrapTries {
			return 0, 0, fmt.Errorf("cluster: re-encrypting %d values: %q kept changing: %w", taken, ce.Key, err)
		}
		// A concurrent write won a record: read the batch again.
	}
}

// noteRewrapError records in the status why the job stopped (it stays
// running: the job is tried again) and returns err. Errors that only
// pause the job are not recorded.
func (n *Node) noteRewrapError(ctx context.Context, st RotationStatus, progRev uint64, err error) error {
	if rewrapPaused(ctx, err) {
		return err
	}
	st.Error = err.Error()
	b, _ := json.Marshal(st)
	if _, perr := n.Apply(ctx, &fsm.Command{
		Conds: []fsm.Cond{{Key: fsm.RecordKeyringRewrap, Revision: progRev}},
		Ops:   []fsm.Op{{Kind: fsm.OpPut, Key: fsm.RecordKeyringRewrap, Value: b}},
	}); perr != nil {
		n.log.Warn("recording the re-encryption error", "error", perr)
	}
	return err
}

// finishRewrap records the job's outcome, expecting the status at
// progRev, with an audit event of its own.
func (n *Node) finishRewrap(ctx context.Context, st RotationStatus, progRev uint64) error {
	b, _ := json.Marshal(st)
	outcome, details := audit.Allowed, map[string]string{
		"term": strconv.FormatUint(uint64(st.Term), 10), "values": strconv.Itoa(st.Done),
	}
	if st.Error != "" {
		outcome, details["error"] = audit.Failed, st.Error
	}
	ev := &audit.Event{Operation: "sys/rotate/rewrap", Identity: "keyraft", Outcome: outcome, Details: details}
	_, err := n.Apply(audit.WithEvent(ctx, ev), &fsm.Command{
		Conds: []fsm.Cond{{Key: fsm.RecordKeyringRewrap, Revision: progRev}},
		Ops:   []fsm.Op{{Kind: fsm.OpPut, Key: fsm.RecordKeyringRewrap, Value: b}},
	})
	if errors.Is(err, fsm.ErrConflict) {
		return errRewrapSuperseded
	}
	return err
}

// staleRecords lists the barrier values made with a term below term, in
// key order, leaving out those in skip.
func (n *Node) staleRecords(term uint32, skip map[string]bool) ([]string, error) {
	var out []string
	// The state machine's own records start with 0x00 and are not the
	// barrier's; every other first byte is scanned.
	for b := 1; b < 256; b++ {
		err := n.fsm.Scan(string([]byte{byte(b)}), func(k string, v []byte, _ uint64) error {
			if !isBarrierValue(k) || skip[k] {
				return nil
			}
			if t, err := seal.CiphertextTerm(v); err == nil && t < term {
				out = append(out, k)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// isBarrierValue reports whether the record at key holds barrier
// ciphertext: everything but the seal's own records (the seal config and
// the job status in the clear, the root key wrapped by a seal, the keyring
// wrapped by the root key) and the audit public key.
func isBarrierValue(key string) bool {
	switch {
	case key == "", key[0] == 0,
		key == fsm.RecordSealConfig, key == fsm.RecordKeyring, key == fsm.RecordKeyringRewrap,
		key == fsm.RecordAuditPublicKey, strings.HasPrefix(key, fsm.RecordRootKey):
		return false
	}
	return true
}
