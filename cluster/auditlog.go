package cluster

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
)

// AuditLog is the replicated audit log seen as an audit.Recorder. Events
// from concurrent requests are grouped into Raft entries (group commit):
// while the entries in flight (up to four, so Raft can put several into
// one log write) are being committed the next batch gathers, so the batch
// size grows with load and no timer delays a lone request. Events of
// concurrent requests may commit in any order among themselves. Record
// returns once the event's entry is committed on a quorum.
type AuditLog struct {
	node     *Node
	in       chan *pendingEvent
	slots    chan struct{} // bounds the entries in flight
	maxBatch int
	timeout  time.Duration

	heldMu sync.Mutex
	held   [][]byte // events from before the node belonged to a cluster
}

type pendingEvent struct {
	data []byte
	done chan error
}

// ErrAuditUnavailable is returned by Record when the event could not be
// committed (no quorum, no leader, timeout).
var ErrAuditUnavailable = errors.New("cluster: audit log unavailable")

func newAuditLog(n *Node) *AuditLog {
	l := &AuditLog{
		node:     n,
		in:       make(chan *pendingEvent, 4096),
		slots:    make(chan struct{}, 4),
		maxBatch: 512,
		timeout:  n.cfg.ApplyTimeout,
	}
	go l.run()
	return l
}

// AuditLog returns the node's audit recorder.
func (n *Node) AuditLog() *AuditLog { return n.audit }

// Record implements audit.Recorder. An event already committed with a
// state change (see Apply) is not written again.
func (l *AuditLog) Record(ctx context.Context, e *audit.Event) error {
	if e.Committed() != 0 {
		return nil
	}
	b, err := e.Encode()
	if err != nil {
		return err
	}
	if held, err := l.hold(b); held || err != nil {
		return err
	}
	p := &pendingEvent{data: b, done: make(chan error, 1)}
	// Checked first: select picks among ready cases at random, and after
	// Shutdown nobody reads l.in any more.
	select {
	case <-l.node.closed:
		return ErrClosed
	default:
	}
	select {
	case l.in <- p:
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, ctx.Err())
	case <-l.node.closed:
		return ErrClosed
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, ctx.Err())
	case <-l.node.closed:
		return ErrClosed
	}
}

// maxHeld bounds the events a node keeps while it belongs to no cluster.
const maxHeld = 4096

// hold keeps an event of a node that belongs to no cluster yet (before
// init or join, there is no log to write to): status checks, the join and
// the first unseal. They are committed, in order, as soon as the node
// bootstraps or is admitted. A node that is never initialized or joined
// loses them with its memory; past maxHeld it refuses to answer.
func (l *AuditLog) hold(b []byte) (held bool, err error) {
	l.heldMu.Lock()
	defer l.heldMu.Unlock()
	if l.node.isMember() {
		return false, nil
	}
	if len(l.held) >= maxHeld {
		return false, fmt.Errorf("%w: this node belongs to no cluster yet and holds %d unrecorded events; initialize or join it", ErrAuditUnavailable, maxHeld)
	}
	l.held = append(l.held, b)
	return true, nil
}

// flushHeld commits the events held before the node joined a cluster.
// Events it cannot commit stay held for the next try (every unseal of a
// member tries again).
func (l *AuditLog) flushHeld() {
	l.heldMu.Lock()
	defer l.heldMu.Unlock()
	for len(l.held) > 0 {
		k := min(len(l.held), l.maxBatch)
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		_, err := l.node.Apply(ctx, &fsm.Command{Events: l.held[:k]})
		cancel()
		if err != nil {
			l.node.log.Warn("events from before the node joined a cluster are not committed yet", "events", len(l.held), "error", err)
			return
		}
		l.held = l.held[k:]
	}
	l.held = nil
}

func (l *AuditLog) run() {
	for {
		var first *pendingEvent
		select {
		case first = <-l.in:
		case <-l.node.closed:
			l.failQueued()
			return
		}
		// Wait for a free slot first: events arriving meanwhile join the batch.
		select {
		case l.slots <- struct{}{}:
		case <-l.node.closed:
			first.done <- ErrClosed
			l.failQueued()
			return
		}
		batch := []*pendingEvent{first}
	gather:
		for len(batch) < l.maxBatch {
			select {
			case p := <-l.in:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		go l.commit(batch)
	}
}

func (l *AuditLog) commit(batch []*pendingEvent) {
	defer func() { <-l.slots }()
	cmd := &fsm.Command{Events: make([][]byte, len(batch))}
	for i, p := range batch {
		cmd.Events[i] = p.data
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	_, err := l.node.Apply(ctx, cmd)
	if err != nil {
		l.node.log.Warn("audit batch not committed", "events", len(batch), "error", err)
		err = fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	for _, p := range batch {
		p.done <- err
	}
}

func (l *AuditLog) failQueued() {
	for {
		select {
		case p := <-l.in:
			p.done <- ErrClosed
		default:
			return
		}
	}
}

// AuditHead returns the newest chained event's seq and hash.
func (n *Node) AuditHead() fsm.AuditHead { return n.fsm.AuditHead() }

// AuditEvents calls fn with each chained event from fromSeq on, in order.
func (n *Node) AuditEvents(fromSeq uint64, fn func(e *audit.Event) error) error {
	return n.fsm.AuditEvents(fromSeq, func(_ uint64, b []byte) error {
		e, err := audit.Decode(b)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// AuditHMAC returns the HMAC of a sensitive value under the cluster's
// audit key; ok is false while the node is sealed.
func (n *Node) AuditHMAC(value []byte) (string, bool) {
	n.mu.Lock()
	k := n.auditHMAC
	n.mu.Unlock()
	if k == nil {
		return "", false
	}
	return k.Sum(value), true
}

// AuditHeadSeq returns the newest chained event's seq (audit.Source).
func (n *Node) AuditHeadSeq() uint64 { return n.fsm.AuditHead().Seq }

// ErrNothingToCheckpoint is returned by Checkpoint when the last
// checkpoint already covers the chain head.
var ErrNothingToCheckpoint = errors.New("cluster: audit head already checkpointed")

// Checkpoint signs the current audit chain head and commits the signed
// checkpoint. Only the leader can; it returns ErrSealed, ErrNotLeader or
// ErrNothingToCheckpoint.
func (n *Node) Checkpoint(ctx context.Context) (*audit.Checkpoint, error) {
	n.mu.Lock()
	signer := n.auditSigner
	n.mu.Unlock()
	if signer == nil {
		return nil, ErrSealed
	}
	head := n.fsm.AuditHead()
	if head.Seq == 0 || head.Seq <= n.lastCheckpointSeq() {
		return nil, ErrNothingToCheckpoint
	}
	cp := &audit.Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: time.Now().UTC()}
	cp.Sign(signer)
	b, err := json.Marshal(cp)
	if err != nil {
		return nil, err
	}
	if _, err := n.Apply(ctx, &fsm.Command{Checkpoint: b}); err != nil {
		return nil, err
	}
	return cp, nil
}

func (n *Node) lastCheckpointSeq() uint64 {
	var last uint64
	n.fsm.AuditCheckpoints(0, func(cp *audit.Checkpoint) error {
		last = cp.Seq
		return nil
	})
	return last
}

// AuditCheckpoints calls fn with each signed checkpoint from seq on.
func (n *Node) AuditCheckpoints(fromSeq uint64, fn func(cp *audit.Checkpoint) error) error {
	return n.fsm.AuditCheckpoints(fromSeq, fn)
}

// AuditPublicKey returns the Ed25519 key that verifies checkpoints, or nil
// before init.
func (n *Node) AuditPublicKey() ed25519.PublicKey {
	v, _, err := n.fsm.Get(fsm.RecordAuditPublicKey)
	if err != nil || len(v) != ed25519.PublicKeySize {
		return nil
	}
	return ed25519.PublicKey(v)
}

func (n *Node) checkpointLoop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-n.closed:
			return
		case <-t.C:
		}
		if !n.IsLeader() || n.Sealed() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
		_, err := n.Checkpoint(ctx)
		cancel()
		if err != nil && !errors.Is(err, ErrNothingToCheckpoint) && !errors.Is(err, ErrSealed) {
			n.log.Warn("audit checkpoint failed", "error", err)
		}
	}
}

// CompactAudit drops audit events up to and including upTo from the
// state, keeping the signed checkpoint at upTo as the chain's new base, so
// what remains still verifies. upTo 0 means the newest checkpoint. Export
// the log first: compacted events are gone from every node. It returns an
// error wrapping fsm.ErrBadCompaction when no checkpoint sits at upTo.
//
// delivered is how far every audit device has delivered (the caller's
// slowest cursor; math.MaxUint64 when none runs): events no device has
// delivered yet are not dropped.
func (n *Node) CompactAudit(ctx context.Context, upTo, delivered uint64) (uint64, error) {
	if upTo == 0 {
		if upTo = n.lastCheckpointSeq(); upTo == 0 {
			return 0, fmt.Errorf("%w: no signed checkpoint yet", fsm.ErrBadCompaction)
		}
	}
	if upTo > delivered {
		return 0, fmt.Errorf("%w: an audit device has delivered events only up to seq %d; wait for it or pass force", fsm.ErrBadCompaction, delivered)
	}
	if _, err := n.Apply(ctx, &fsm.Command{CompactAuditTo: upTo}); err != nil {
		return 0, err
	}
	return upTo, nil
}

// AuditBase returns the checkpoint the stored chain starts from after a
// compaction, or nil.
func (n *Node) AuditBase() (*audit.Checkpoint, error) { return n.fsm.AuditBase() }

// AuditDevices lists the audit devices configured through the API. It
// returns ErrSealed while sealed (device records are barrier-encrypted).
func (n *Node) AuditDevices() ([]audit.Device, error) {
	names, err := n.List(fsm.RecordAuditDevice)
	if err != nil {
		return nil, err
	}
	out := make([]audit.Device, 0, len(names))
	for _, name := range names {
		v, _, err := n.Read(fsm.RecordAuditDevice + name)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		var d audit.Device
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, fmt.Errorf("cluster: audit device %q: %w", name, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// PutAuditDevice creates or replaces an audit device on every node.
func (n *Node) PutAuditDevice(ctx context.Context, d audit.Device) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = n.Commit(ctx, &Txn{Writes: []Write{{Key: fsm.RecordAuditDevice + d.Name, Value: b}}})
	return err
}

// DeleteAuditDevice removes an audit device; it returns false when there
// was none of that name.
func (n *Node) DeleteAuditDevice(ctx context.Context, name string) (bool, error) {
	rev, err := n.Revision(fsm.RecordAuditDevice + name)
	if err != nil || rev == 0 {
		return false, err
	}
	// Its committed cursor goes with it: a new device of the same name
	// starts from nothing. Nodes drop their own records of it.
	_, err = n.Commit(ctx, &Txn{Expect: []fsm.Cond{{Key: fsm.RecordAuditDevice + name, Revision: rev}},
		Writes: []Write{{Key: fsm.RecordAuditDevice + name, Delete: true}, {Key: fsm.RecordAuditCursorCluster + name, Delete: true}}})
	return err == nil, err
}

// AuditVerification is the result of VerifyAudit.
type AuditVerification struct {
	Events            int
	Checkpoints       int
	HeadSeq           uint64
	LastCheckpointSeq uint64
	// Problem is the first thing wrong, or nil when the log is intact.
	Problem *audit.Problem
}

// VerifyAudit checks this node's whole stored audit log: the hash chain
// from the genesis hash (or the compaction base), every checkpoint's
// signature, that each checkpoint's hash is that of the stored event it
// covers (so an event rewritten on disk with the chain recomputed after it
// is caught), and that the chain ends at the head. Events after the newest
// checkpoint are protected by the chain alone until the next checkpoint.
// errVerifyDone ends the scan of events at the head VerifyAudit started with.
var errVerifyDone = errors.New("cluster: verified up to the head")

func (n *Node) VerifyAudit() (*AuditVerification, error) {
	res := &AuditVerification{}
	// The head first: events keep arriving while the log is read (this
	// very request adds one), so verify up to the head as it was.
	head := n.AuditHead()
	pub := n.AuditPublicKey()
	v := audit.NewVerifier(0, audit.GenesisHash)
	base, err := n.AuditBase()
	if err != nil {
		return nil, err
	}
	if base != nil {
		if !base.Verify(pub) {
			res.Problem = &audit.Problem{Seq: base.Seq, Reason: "the compaction base checkpoint has a bad signature"}
			return res, nil
		}
		v = audit.NewVerifier(base.Seq, base.Hash)
	}
	signed := map[uint64]string{}
	err = n.AuditCheckpoints(0, func(cp *audit.Checkpoint) error {
		if !cp.Verify(pub) {
			return &audit.Problem{Seq: cp.Seq, Reason: "bad checkpoint signature"}
		}
		signed[cp.Seq] = cp.Hash
		res.LastCheckpointSeq = max(res.LastCheckpointSeq, cp.Seq)
		return nil
	})
	res.Checkpoints = len(signed)
	if err == nil {
		err = n.AuditEvents(1, func(e *audit.Event) error {
			if e.Seq > head.Seq {
				return errVerifyDone
			}
			res.Events++
			if err := v.Next(e); err != nil {
				return err
			}
			if h, ok := signed[e.Seq]; ok && h != e.Hash {
				return &audit.Problem{Seq: e.Seq, Reason: "the event's hash differs from its signed checkpoint: an event after the previous checkpoint and up to this one was edited"}
			}
			return nil
		})
	}
	if errors.Is(err, errVerifyDone) {
		err = nil
	}
	last, lastHash := v.Last()
	res.HeadSeq = head.Seq
	if err == nil && (last != head.Seq || lastHash != head.Hash) {
		err = &audit.Problem{Seq: last + 1, Reason: fmt.Sprintf("the chain ends at seq %d but the head says %d", last, head.Seq)}
	}
	var p *audit.Problem
	switch {
	case errors.As(err, &p):
		res.Problem = p
	case err != nil:
		return nil, err
	}
	return res, nil
}

// AuditRecords calls fn with each committed event's stored JSON from
// fromSeq on (audit.Source).
func (n *Node) AuditRecords(fromSeq uint64, fn func(seq uint64, event []byte) error) error {
	return n.fsm.AuditEvents(fromSeq, fn)
}

// AuditBaseSeq returns the seq through which the audit log was compacted
// (audit.Source).
func (n *Node) AuditBaseSeq() uint64 {
	if b, err := n.fsm.AuditBase(); err == nil && b != nil {
		return b.Seq
	}
	return 0
}

// AuditSettle returns once this node's state holds every entry the
// cluster had committed when it was called (audit.Source): on the leader
// after a barrier. A follower cannot know that without asking the
// leader, so it returns ErrNotLeader: its sinks wait for its log to grow
// rather than conclude anything from an event it lacks.
func (n *Node) AuditSettle(ctx context.Context) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	return n.raft.Barrier(timeout).Error()
}

// Audit delivery cursors, committed through the log so that compaction
// can wait for every device on every node, and so that the next node to
// deliver a cluster-wide device resumes where the last one stopped:
//
//	sys/audit-cursor/cluster/<device>        a cluster-wide device
//	sys/audit-cursor/node/<node>/<device>    a node-local device on <node>

// CommittedAuditCursor returns the committed cursor of a cluster-wide
// device; ok is false when there is none or it cannot be read (sealed).
func (n *Node) CommittedAuditCursor(device string) (audit.Position, bool) {
	p, _, err := n.readCursor(fsm.RecordAuditCursorCluster + device)
	return p, err == nil && p.Seq > 0
}

func (n *Node) readCursor(key string) (audit.Position, uint64, error) {
	v, rev, err := n.Read(key)
	if err != nil || v == nil {
		return audit.Position{}, rev, err
	}
	var p audit.Position
	if err := json.Unmarshal(v, &p); err != nil {
		return audit.Position{}, rev, fmt.Errorf("cluster: audit cursor %s: %w", key, err)
	}
	return p, rev, nil
}

// RecordAuditCursors commits the positions this node's devices have
// delivered (a cluster-wide device's only while this node delivers it):
// the position the sink confirmed, even when lower than the record (a
// collector that lost data, a new file after a restore), so compaction
// keeps what the sink lacks. When configured is not nil, records of this
// node's node-local devices not in it are removed; a configured device
// that cannot start keeps its record. One commit, none when nothing moved.
func (n *Node) RecordAuditCursors(ctx context.Context, statuses []audit.DeviceStatus, configured []string) error {
	mine := fsm.RecordAuditCursorNode + n.cfg.NodeID + "/"
	txn := &Txn{}
	keep := map[string]bool{}
	for _, name := range configured {
		keep[name] = true
	}
	for _, st := range statuses {
		key := mine + st.Device.Name
		if st.Device.ClusterWide() {
			if !st.Active {
				continue
			}
			key = fsm.RecordAuditCursorCluster + st.Device.Name
		}
		old, rev, err := n.readCursor(key)
		if err != nil {
			return err
		}
		if st.Delivered == old && rev != 0 {
			continue
		}
		b, _ := json.Marshal(st.Delivered)
		txn.Expect = append(txn.Expect, fsm.Cond{Key: key, Revision: rev})
		txn.Writes = append(txn.Writes, Write{Key: key, Value: b})
	}
	if configured != nil {
		names, err := n.List(mine)
		if err != nil {
			return err
		}
		for _, name := range names {
			if !keep[name] {
				txn.Writes = append(txn.Writes, Write{Key: mine + name, Delete: true})
			}
		}
	}
	if len(txn.Writes) == 0 {
		return nil
	}
	_, err := n.Commit(ctx, txn)
	return err
}

// AuditDeliveredThrough returns the seq through which every audit device
// has delivered, on every node that delivers it (math.MaxUint64 when no
// device exists), and which device holds it back: compaction never drops
// what a device still has to deliver. A device that has not delivered yet
// (or could not start) counts as 0.
func (n *Node) AuditDeliveredThrough() (uint64, string, error) {
	devs, err := n.AuditDevices()
	if err != nil {
		return 0, "", err
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return 0, "", err
	}
	var members []string
	for _, s := range f.Configuration().Servers {
		members = append(members, string(s.ID))
	}
	least, who := uint64(math.MaxUint64), ""
	note := func(seq uint64, what string) {
		if seq < least {
			least, who = seq, what
		}
	}
	api := map[string]bool{}
	for _, d := range devs {
		api[d.Name] = true
		if d.ClusterWide() {
			p, _, err := n.readCursor(fsm.RecordAuditCursorCluster + d.Name)
			if err != nil {
				return 0, "", err
			}
			note(p.Seq, fmt.Sprintf("device %q", d.Name))
			continue
		}
		for _, m := range members {
			p, _, err := n.readCursor(fsm.RecordAuditCursorNode + m + "/" + d.Name)
			if err != nil {
				return 0, "", err
			}
			note(p.Seq, fmt.Sprintf("device %q on node %q", d.Name, m))
		}
	}
	// Devices of the nodes' own config files.
	for _, m := range members {
		names, err := n.List(fsm.RecordAuditCursorNode + m + "/")
		if err != nil {
			return 0, "", err
		}
		for _, name := range names {
			if api[name] {
				continue
			}
			p, _, err := n.readCursor(fsm.RecordAuditCursorNode + m + "/" + name)
			if err != nil {
				return 0, "", err
			}
			note(p.Seq, fmt.Sprintf("device %q on node %q", name, m))
		}
	}
	return least, who, nil
}
