package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/transport/forward"
)

// Requests a follower forwards to the leader over the cluster port. The
// first byte names the kind; the rest is its argument.
const (
	// fwdApply carries an encoded fsm.Command; the answer is an encoded
	// fsm.Result.
	fwdApply byte = 1
	// fwdRemovePeer carries a server ID.
	fwdRemovePeer byte = 2
)

// remoteNotLeader is the error text a node sends when it is asked to
// lead but does not; nothing was applied, so the sender retries with the
// current leader. remoteLeadershipLost means the entry may or may not
// commit: the sender reports ErrNotLeader and does not retry.
const (
	remoteNotLeader      = "not the leader"
	remoteLeadershipLost = "leadership lost while committing"
)

// errBecameLeader tells commit that this node became leader while it was
// forwarding: apply locally instead.
var errBecameLeader = errors.New("cluster: became leader")

// raftErrorIsUnsent reports Raft errors returned before an entry was
// appended (safe to retry elsewhere) and isLeadershipLoss those after
// (outcome unknown).
func raftErrorIsUnsent(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
		errors.Is(err, raft.ErrEnqueueTimeout)
}

// Result encoding on the wire: index, first seq, last seq (8 bytes each),
// then an outcome byte and, for errors, the text or conflicting key.
const (
	resultOK       byte = 0
	resultConflict byte = 1
	resultFailed   byte = 2 // wraps fsm.ErrMalformed
	resultBadCheck byte = 3 // wraps fsm.ErrBadCheckpoint
	resultBadCompa byte = 4 // wraps fsm.ErrBadCompaction
)

// resultSentinels are the state machine's errors a forwarded result keeps.
var resultSentinels = map[byte]error{
	resultFailed:   fsm.ErrMalformed,
	resultBadCheck: fsm.ErrBadCheckpoint,
	resultBadCompa: fsm.ErrBadCompaction,
}

func encodeResult(r *fsm.Result) []byte {
	b := make([]byte, 0, 25+64)
	b = binary.BigEndian.AppendUint64(b, r.Index)
	b = binary.BigEndian.AppendUint64(b, r.FirstSeq)
	b = binary.BigEndian.AppendUint64(b, r.LastSeq)
	var ce *fsm.ConflictError
	switch {
	case r.Err == nil:
		b = append(b, resultOK)
	case errors.As(r.Err, &ce):
		b = append(append(b, resultConflict), ce.Key...)
	case errors.Is(r.Err, fsm.ErrBadCheckpoint):
		b = append(append(b, resultBadCheck), r.Err.Error()...)
	case errors.Is(r.Err, fsm.ErrBadCompaction):
		b = append(append(b, resultBadCompa), r.Err.Error()...)
	default:
		b = append(append(b, resultFailed), r.Err.Error()...)
	}
	return b
}

// decodeResult parses a forwarded result. A malformed one is an error,
// never a panic.
func decodeResult(b []byte) (*fsm.Result, error) {
	if len(b) < 25 {
		return nil, errors.New("cluster: forwarded result is truncated")
	}
	r := &fsm.Result{
		Index:    binary.BigEndian.Uint64(b[0:8]),
		FirstSeq: binary.BigEndian.Uint64(b[8:16]),
		LastSeq:  binary.BigEndian.Uint64(b[16:24]),
	}
	rest := string(b[25:])
	switch b[24] {
	case resultOK:
		if rest != "" {
			return nil, errors.New("cluster: forwarded result has trailing bytes")
		}
	case resultConflict:
		r.Err = &fsm.ConflictError{Key: rest}
	case resultFailed, resultBadCheck, resultBadCompa:
		sentinel := resultSentinels[b[24]]
		r.Err = fmt.Errorf("%w: %s", sentinel, strings.TrimPrefix(strings.TrimPrefix(rest, sentinel.Error()), ": "))
	default:
		return nil, fmt.Errorf("cluster: forwarded result has unknown outcome %d", b[24])
	}
	if r.Index == 0 {
		return nil, errors.New("cluster: forwarded result has no index")
	}
	return r, nil
}

// handleForward runs a request a follower forwarded (this node must lead).
func (n *Node) handleForward(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) == 0 {
		return nil, errors.New("empty request")
	}
	if !n.IsLeader() {
		return nil, errors.New(remoteNotLeader)
	}
	switch req[0] {
	case fwdApply:
		timeout := n.cfg.ApplyTimeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = time.Until(dl)
		}
		f := n.raft.Apply(req[1:], timeout)
		if err := f.Error(); err != nil {
			switch {
			case raftErrorIsUnsent(err):
				return nil, errors.New(remoteNotLeader)
			case errors.Is(err, raft.ErrLeadershipLost):
				return nil, errors.New(remoteLeadershipLost)
			}
			return nil, fmt.Errorf("raft apply: %v", err)
		}
		res, ok := f.Response().(*fsm.Result)
		if !ok {
			return nil, fmt.Errorf("unexpected apply response %T", f.Response())
		}
		return encodeResult(res), nil
	case fwdRemovePeer:
		if err := n.removePeer(string(req[1:])); err != nil {
			return nil, err
		}
		return []byte{}, nil
	}
	return nil, fmt.Errorf("unknown request kind %d", req[0])
}

// forwardCall sends req to the current leader, retrying while there is
// none or it changes before the request is sent, until ctx ends. It maps
// the leader's sentinel answers back to this package's errors.
func (n *Node) forwardCall(ctx context.Context, req []byte) ([]byte, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		addr, _ := n.raft.LeaderWithID()
		if addr != "" && !n.IsLeader() {
			resp, err := n.fwd.Call(ctx, string(addr), req)
			var re *forward.RemoteError
			switch {
			case err == nil:
				return resp, nil
			case errors.As(err, &re) && re.Msg == remoteNotLeader, errors.Is(err, forward.ErrUnavailable):
				// Nothing was applied: safe to try again.
			case errors.As(err, &re) && re.Msg == remoteLeadershipLost:
				return nil, fmt.Errorf("%w: the leader lost leadership while committing", ErrNotLeader)
			case errors.As(err, &re):
				return nil, remoteError(re.Msg)
			default:
				return nil, fmt.Errorf("cluster: forwarding to the leader at %s: %w", addr, err)
			}
		} else if n.IsLeader() {
			if req[0] == fwdRemovePeer {
				return nil, n.removePeer(string(req[1:]))
			}
			return nil, errBecameLeader
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-n.closed:
			return nil, ErrClosed
		case <-t.C:
		}
	}
}

// remoteError turns a leader's error text back into the sentinel it came
// from, where there is one.
func remoteError(msg string) error {
	for _, e := range []error{ErrUnknownPeer, ErrLastVoter} {
		if strings.HasPrefix(msg, e.Error()) {
			return fmt.Errorf("%w%s", e, strings.TrimPrefix(msg, e.Error()))
		}
	}
	return fmt.Errorf("cluster: the leader refused: %s", msg)
}

// commit puts an encoded command through Raft: directly on the leader,
// forwarded from a follower. A follower answers only after its own state
// machine has applied the entry, so a client reads its own writes.
//
// eventsOnly says the command carries audit events and nothing else: a
// follower answers as soon as the leader says it committed (on a quorum),
// since nothing is read back through this node — waiting for the local
// apply would cost up to Raft's commit timeout per batch.
func (n *Node) commit(ctx context.Context, data []byte, eventsOnly bool) (*fsm.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	for {
		res, err := n.commitOnce(ctx, data, eventsOnly)
		if errors.Is(err, errBecameLeader) {
			continue
		}
		return res, err
	}
}

func (n *Node) commitOnce(ctx context.Context, data []byte, eventsOnly bool) (*fsm.Result, error) {
	if n.IsLeader() {
		timeout := n.cfg.ApplyTimeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = time.Until(dl)
		}
		f := n.raft.Apply(data, timeout)
		if err := f.Error(); err != nil {
			switch {
			case raftErrorIsUnsent(err):
				// Not appended (lost leadership first, or a transfer is
				// under way): nothing was written, forward it instead.
			case errors.Is(err, raft.ErrLeadershipLost):
				return nil, fmt.Errorf("%w: %v", ErrNotLeader, err)
			case errors.Is(err, raft.ErrRaftShutdown):
				return nil, ErrClosed
			default:
				return nil, fmt.Errorf("cluster: raft apply: %w", err)
			}
		} else {
			res, ok := f.Response().(*fsm.Result)
			if !ok {
				return nil, fmt.Errorf("cluster: unexpected apply response %T", f.Response())
			}
			return res, nil
		}
	}
	if !n.isMember() {
		return nil, ErrNoLeader
	}
	resp, err := n.forwardCall(ctx, append([]byte{fwdApply}, data...))
	if err != nil {
		return nil, err
	}
	res, err := decodeResult(resp)
	if err != nil {
		return nil, err
	}
	if eventsOnly {
		// An audit batch only has to be committed on a quorum, which the
		// leader's answer says; nobody reads it back through this node.
		return res, nil
	}
	if err := n.waitApplied(ctx, res.Index); err != nil {
		return nil, fmt.Errorf("cluster: committed at %d, but this node has not applied it yet: %w", res.Index, err)
	}
	return res, nil
}

// waitApplied blocks until the local state machine has applied the
// command at index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	for {
		ch := n.applied.wait()
		if n.fsm.AppliedIndex() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.closed:
			return ErrClosed
		}
	}
}

// appliedSignal wakes waiters whenever the state machine applies entries.
type appliedSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *appliedSignal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *appliedSignal) fire() {
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
}

// signalingFSM is the state machine as Raft sees it: the FSM plus a
// signal after every apply (followers wait on it for read-your-writes)
// and a check of the root of trust after a restore.
type signalingFSM struct {
	*fsm.FSM
	n *Node
}

func (s signalingFSM) Apply(l *raft.Log) any {
	r := s.FSM.Apply(l)
	s.n.applied.fire()
	s.n.noteKeyringWrite([]*raft.Log{l})
	return r
}

func (s signalingFSM) ApplyBatch(logs []*raft.Log) []any {
	r := s.FSM.ApplyBatch(logs)
	s.n.applied.fire()
	s.n.noteKeyringWrite(logs)
	return r
}

func (s signalingFSM) Restore(rc io.ReadCloser) error {
	err := s.FSM.Restore(rc)
	s.n.applied.fire()
	if err == nil {
		s.n.afterRestore()
		s.n.kickKeyring() // the restored keyring may differ
	}
	return err
}
