package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/cluster/forward"
	"github.com/keyraft/keyraft/fsm"
)

// Requests a follower forwards to the leader over the cluster port. The
// first byte names the kind; the rest is its argument.
const (
	// fwdApply carries an encoded fsm.Command; the answer is an encoded
	// fsm.Result. Older nodes send it; this one sends fwdApplyOnce.
	fwdApply byte = 1
	// fwdRemovePeer carries a server ID.
	fwdRemovePeer byte = 2
	// fwdApplyOnce carries the leader's term as the sender saw it (8
	// bytes, big-endian), the attempt's token (applyTokenLen bytes) and an
	// encoded fsm.Command; the answer is an encoded fsm.Result. The leader
	// applies it only in that term and only while no fwdResolve fenced
	// the token, else answers remoteNotLeader (nothing applied). The
	// token rides in the Raft entry's Extensions, so every node's state
	// machine sees which attempt an applied entry was (outcomeLog).
	fwdApplyOnce byte = 3
	// fwdResolve carries an index the attempt's entry must lie above (8
	// bytes) and the attempt's token. The leader fences the token,
	// commits a barrier in its own term — after which an entry of an
	// attempt sent earlier either has committed or never will — and
	// answers resolvedNo, or resolvedYes and the encoded fsm.Result the
	// entry had. It answers remoteInDoubt when it cannot tell.
	fwdResolve byte = 4
)

// Answers to fwdResolve.
const (
	resolvedNo  byte = 0
	resolvedYes byte = 1
)

// remoteNotLeader is the error text a node sends when it is asked to
// lead but does not; nothing was applied, so the sender retries with the
// current leader. remoteLeadershipLost (from older nodes too) and texts
// starting with remoteInDoubt mean the entry may or may not commit: the
// sender finds out with fwdResolve before it sends the command again.
const (
	remoteNotLeader      = "not the leader"
	remoteLeadershipLost = "leadership lost while committing"
	remoteInDoubt        = "outcome unknown"
)

func remoteTextInDoubt(msg string) bool {
	return msg == remoteLeadershipLost || strings.HasPrefix(msg, remoteInDoubt)
}

// errBecameLeader tells commit that this node became leader while it was
// forwarding: apply locally instead. errTryAgain tells it that an attempt
// is known not to have committed (and never to commit): start afresh.
var (
	errBecameLeader = errors.New("cluster: became leader")
	errTryAgain     = errors.New("cluster: not committed, try again")
)

// errLeaderChanged: the leader a call went to is no longer the leader
// this node knows, so the call was given up. If it was sent, its outcome
// is unknown.
var errLeaderChanged = errors.New("cluster: the leader changed")

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

// Stages of a forwarded command at which forwardHook runs.
const (
	hookApply  = "apply"
	hookAnswer = "answer"
)

func (n *Node) runForwardHook(ctx context.Context, stage string, req []byte) {
	if h := n.forwardHook.Load(); h != nil {
		(*h)(ctx, stage, req)
	}
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
	case fwdApply, fwdApplyOnce:
		timeout := n.cfg.ApplyTimeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = time.Until(dl)
		}
		n.runForwardHook(ctx, hookApply, req)
		var f raft.ApplyFuture
		if req[0] == fwdApply {
			f = n.raft.Apply(req[1:], timeout)
		} else {
			if len(req) < 1+8+applyTokenLen {
				return nil, errors.New("truncated apply request")
			}
			var tok applyToken
			copy(tok[:], req[9:])
			var err error
			if f, err = n.applyFenced(ctx, binary.BigEndian.Uint64(req[1:9]), tok, req[9+applyTokenLen:], timeout); err != nil {
				return nil, err
			}
		}
		if err := f.Error(); err != nil {
			switch {
			case raftErrorIsUnsent(err):
				return nil, errors.New(remoteNotLeader)
			case errors.Is(err, raft.ErrLeadershipLost):
				return nil, errors.New(remoteLeadershipLost)
			}
			// Appended, perhaps: shutdown, a restore, a timeout.
			return nil, fmt.Errorf("%s: raft apply: %v", remoteInDoubt, err)
		}
		res, ok := f.Response().(*fsm.Result)
		if !ok {
			return nil, fmt.Errorf("unexpected apply response %T", f.Response())
		}
		n.runForwardHook(ctx, hookAnswer, req)
		return encodeResult(res), nil
	case fwdResolve:
		if len(req) != 1+8+applyTokenLen {
			return nil, errors.New("malformed resolve request")
		}
		var tok applyToken
		copy(tok[:], req[9:])
		return n.resolveHere(ctx, tok, binary.BigEndian.Uint64(req[1:9]))
	case fwdRemovePeer:
		if err := n.removePeer(string(req[1:])); err != nil {
			return nil, err
		}
		return []byte{}, nil
	}
	return nil, fmt.Errorf("unknown request kind %d", req[0])
}

// applyFenced hands a forwarded attempt to Raft unless it must not run:
// its token was fenced by a resolve (which then answers for it), its
// sender gave up, or this node no longer leads in the term the sender
// meant. The read lock keeps a resolve's fence and barrier from slipping
// between the check and the append: an attempt either enters the log
// before the barrier or never.
func (n *Node) applyFenced(ctx context.Context, term uint64, tok applyToken, cmd []byte, timeout time.Duration) (raft.ApplyFuture, error) {
	n.fences.mu.RLock()
	defer n.fences.mu.RUnlock()
	_, fenced := n.fences.m[tok]
	if fenced || ctx.Err() != nil || !n.IsLeader() || n.raft.CurrentTerm() != term {
		return nil, errors.New(remoteNotLeader)
	}
	return n.raft.ApplyLog(raft.Log{Data: cmd, Extensions: tokenExtension(tok)}, timeout), nil
}

// resolveHere answers, as leader, whether the attempt tok (whose entry,
// if any, lies above index after) committed. It returns the fwdResolve
// answer, or an error text for the sender: remoteNotLeader (ask the next
// leader) or remoteInDoubt (nobody can tell).
func (n *Node) resolveHere(ctx context.Context, tok applyToken, after uint64) ([]byte, error) {
	if !n.IsLeader() {
		return nil, errors.New(remoteNotLeader)
	}
	if !n.fences.add(tok, n.fenceTTL()) {
		return nil, fmt.Errorf("%s: too many commands being resolved at once", remoteInDoubt)
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	// A barrier in this leader's term: once it applies, every entry of an
	// earlier term is decided and applied here, and the fence keeps this
	// node from appending the attempt after it.
	if err := n.raft.Barrier(timeout).Error(); err != nil {
		if raftErrorIsUnsent(err) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, errors.New(remoteNotLeader)
		}
		return nil, fmt.Errorf("%s: barrier: %v", remoteInDoubt, err)
	}
	res, known := n.outcomes.lookup(tok, after)
	switch {
	case !known:
		return nil, fmt.Errorf("%s: this node does not remember entries that old", remoteInDoubt)
	case res == nil:
		return []byte{resolvedNo}, nil
	}
	return append([]byte{resolvedYes}, res...), nil
}

// fenceTTL is how long a resolved token stays fenced: far longer than a
// forwarded attempt can wait in a leader before it is appended.
func (n *Node) fenceTTL() time.Duration { return 2*n.cfg.ApplyTimeout + time.Minute }

// leaderNow returns the leader this node knows and the term it leads in;
// ok is false when there is none or the term moved while reading.
func (n *Node) leaderNow() (addr raft.ServerAddress, id raft.ServerID, term uint64, ok bool) {
	term = n.raft.CurrentTerm()
	addr, id = n.raft.LeaderWithID()
	return addr, id, term, addr != "" && n.raft.CurrentTerm() == term
}

// callLeader sends req to the leader at addr and waits for its answer,
// giving up with errLeaderChanged as soon as this node sees another
// leader (or none): a frozen or partitioned leader must not hold the call
// until its deadline. If the leader moved before anything was sent, the
// error also matches forward.ErrUnavailable.
func (n *Node) callLeader(ctx context.Context, addr raft.ServerAddress, id raft.ServerID, req []byte) ([]byte, error) {
	epoch := n.leaderEpoch.current()
	if a, i := n.raft.LeaderWithID(); a != addr || i != id {
		// Moved before anything was sent.
		return nil, fmt.Errorf("%w: %w", forward.ErrUnavailable, errLeaderChanged)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(epoch, func() { cancel(errLeaderChanged) })
	defer stop()
	resp, err := n.fwd.Call(cctx, string(addr), req)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(cctx), errLeaderChanged) {
		return nil, errLeaderChanged
	}
	return resp, err
}

// waitLeaderChange waits a moment (until the leader changes, or 20 ms)
// before a retry; it fails when ctx ends or the node closes.
func (n *Node) waitLeaderChange(ctx context.Context) error {
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-n.closed:
		return ErrClosed
	case <-n.leaderEpoch.current().Done():
	case <-t.C:
	}
	return nil
}

// forwardApply sends an encoded command to the leader and returns the
// encoded result. It sends again while nothing was applied (no leader,
// not the leader, peer unreachable). When an attempt may have been
// applied — its connection died, the leader lost leadership while
// committing it, or another leader took over while it waited — it asks
// the current leader whether that attempt committed (resolve): if so it
// returns that result, if not (and it now never will) it sends the
// command again; if nobody can tell before ctx ends it returns
// ErrOutcomeUnknown. So a command is applied at most once, and a stuck
// leader delays it only until a new one is elected.
func (n *Node) forwardApply(ctx context.Context, data []byte) ([]byte, error) {
	wait := false
	for {
		if wait {
			if err := n.waitLeaderChange(ctx); err != nil {
				if errors.Is(err, ErrClosed) {
					return nil, err
				}
				return nil, fmt.Errorf("%w: %v", ErrNoLeader, err)
			}
		}
		wait = true
		if n.IsLeader() {
			return nil, errBecameLeader
		}
		addr, id, term, ok := n.leaderNow()
		if !ok {
			continue
		}
		tok := newApplyToken()
		// Every entry up to this node's commit index is decided, so the
		// attempt's entry, if it ever commits, lies above it.
		after := n.raft.CommitIndex()
		req := make([]byte, 0, 1+8+applyTokenLen+len(data))
		req = append(req, fwdApplyOnce)
		req = binary.BigEndian.AppendUint64(req, term)
		req = append(append(req, tok[:]...), data...)
		resp, err := n.callLeader(ctx, addr, id, req)
		var re *forward.RemoteError
		switch {
		case err == nil:
			return resp, nil
		case errors.As(err, &re) && re.Msg == remoteNotLeader, errors.Is(err, forward.ErrUnavailable):
			continue // nothing was applied: safe to try again
		case errors.As(err, &re) && strings.HasPrefix(re.Msg, "unknown request kind"):
			// A leader of an older version: no tokens, no resolving.
			return n.forwardCall(ctx, append([]byte{fwdApply}, data...))
		case errors.As(err, &re) && remoteTextInDoubt(re.Msg), errors.Is(err, forward.ErrConnLost), errors.Is(err, errLeaderChanged):
			res, applied, err := n.resolve(ctx, tok, after)
			if err != nil {
				return nil, fmt.Errorf("%w (forwarded to %s, then: %v)", ErrOutcomeUnknown, addr, err)
			}
			if applied {
				return res, nil
			}
			wait = false // decided: not applied, and it never will be
		case errors.As(err, &re):
			return nil, remoteError(re.Msg)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%w (no answer from the leader at %s in time: %v)", ErrOutcomeUnknown, addr, ctx.Err())
		default:
			return nil, fmt.Errorf("cluster: forwarding to the leader at %s: %w", addr, err)
		}
	}
}

// resolve finds out from the leader (or this node, if it leads) whether
// the attempt tok committed: applied with its encoded result, or not
// applied and never to be. It asks each leader it sees until one can
// tell, and fails when ctx ends or a leader says nobody can tell.
func (n *Node) resolve(ctx context.Context, tok applyToken, after uint64) (res []byte, applied bool, err error) {
	req := make([]byte, 0, 1+8+applyTokenLen)
	req = append(req, fwdResolve)
	req = binary.BigEndian.AppendUint64(req, after)
	req = append(req, tok[:]...)
	for first := true; ; first = false {
		if !first {
			if err := n.waitLeaderChange(ctx); err != nil {
				return nil, false, err
			}
		}
		var ans []byte
		if n.IsLeader() {
			ans, err = n.resolveHere(ctx, tok, after)
			if err != nil {
				if err.Error() == remoteNotLeader {
					continue
				}
				return nil, false, err
			}
		} else {
			addr, id := n.raft.LeaderWithID()
			if addr == "" {
				continue
			}
			ans, err = n.callLeader(ctx, addr, id, req)
			var re *forward.RemoteError
			switch {
			case err == nil:
			case errors.As(err, &re) && strings.HasPrefix(re.Msg, remoteInDoubt):
				return nil, false, err
			case errors.As(err, &re) && re.Msg != remoteNotLeader:
				return nil, false, err // an older leader, or a failure there
			case ctx.Err() != nil:
				return nil, false, ctx.Err()
			default:
				continue // not the leader, unreachable, lost, changed: ask again
			}
		}
		switch {
		case len(ans) == 1 && ans[0] == resolvedNo:
			return nil, false, nil
		case len(ans) > 1 && ans[0] == resolvedYes:
			return ans[1:], true, nil
		}
		return nil, false, errors.New("cluster: malformed resolve answer")
	}
}

// forwardCall sends req to the current leader, retrying while there is
// none or it changes before the request is sent, until ctx ends. It maps
// the leader's sentinel answers back to this package's errors. It sends
// requests that have no token (removals, and commands to a leader of an
// older version), so an interrupted one ends in ErrOutcomeUnknown.
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
			case errors.As(err, &re) && remoteTextInDoubt(re.Msg):
				return nil, fmt.Errorf("%w (%w: %s)", ErrOutcomeUnknown, ErrNotLeader, re.Msg)
			case errors.As(err, &re):
				return nil, remoteError(re.Msg)
			case errors.Is(err, forward.ErrConnLost):
				return nil, fmt.Errorf("%w (forwarding to %s: %v)", ErrOutcomeUnknown, addr, err)
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
//
// A command whose leader is lost while committing it is applied at most
// once: commit finds out whether it committed before it tries again, and
// returns ErrOutcomeUnknown when it cannot find out in time.
func (n *Node) commit(ctx context.Context, data []byte, eventsOnly bool) (*fsm.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	for {
		res, err := n.commitOnce(ctx, data, eventsOnly)
		if errors.Is(err, errBecameLeader) || errors.Is(err, errTryAgain) {
			continue
		}
		return res, err
	}
}

func (n *Node) commitOnce(ctx context.Context, data []byte, eventsOnly bool) (*fsm.Result, error) {
	var resp []byte
	if n.IsLeader() {
		timeout := n.cfg.ApplyTimeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = time.Until(dl)
		}
		tok := newApplyToken()
		after := n.raft.CommitIndex()
		f := n.raft.ApplyLog(raft.Log{Data: data, Extensions: tokenExtension(tok)}, timeout)
		err := f.Error()
		switch {
		case err == nil:
			res, ok := f.Response().(*fsm.Result)
			if !ok {
				return nil, fmt.Errorf("cluster: unexpected apply response %T", f.Response())
			}
			return res, nil
		case raftErrorIsUnsent(err):
			// Not appended (lost leadership first, or a transfer is
			// under way): nothing was written, forward it instead.
		case errors.Is(err, raft.ErrLeadershipLost):
			// Appended; whether it commits is up to the next leader.
			r, applied, rerr := n.resolve(ctx, tok, after)
			if rerr != nil {
				return nil, fmt.Errorf("%w (%w: %v; then: %v)", ErrOutcomeUnknown, ErrNotLeader, err, rerr)
			}
			if !applied {
				return nil, errTryAgain
			}
			resp = r
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, ErrClosed
		default:
			return nil, fmt.Errorf("cluster: raft apply: %w", err)
		}
	}
	if resp == nil {
		if !n.isMember() {
			return nil, ErrNoLeader
		}
		var err error
		if resp, err = n.forwardApply(ctx, data); err != nil {
			return nil, err
		}
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

// Attempt tokens. Every command this node puts through Raft carries a
// fresh random token in its entry's Extensions (tokenExtension); every
// node's state machine wrapper records the result of each entry by its
// token (outcomeLog), which is how a leader answers fwdResolve.
const (
	applyTokenLen = 16
	// extToken is the first byte of Extensions that carry a token.
	extToken byte = 1
)

type applyToken [applyTokenLen]byte

func newApplyToken() applyToken {
	var t applyToken
	rand.Read(t[:]) // never fails (crypto/rand)
	return t
}

func tokenExtension(t applyToken) []byte {
	return append([]byte{extToken}, t[:]...)
}

func tokenOf(ext []byte) (applyToken, bool) {
	var t applyToken
	if len(ext) != 1+applyTokenLen || ext[0] != extToken {
		return t, false
	}
	copy(t[:], ext[1:])
	return t, true
}

// maxOutcomes bounds the results an outcomeLog keeps (a few MiB at most).
// At the cluster's commit rate that is far longer than a command waits
// for its answer (the apply timeout); a question about an older entry is
// answered "unknown", never wrongly "not applied".
const maxOutcomes = 1 << 15

// outcomeLog holds the results of the newest applied entries that carry
// a token. floor is the lowest index from which it is complete: entries
// below it may have applied unrecorded (before this process started,
// inside a restored snapshot, or evicted).
type outcomeLog struct {
	mu    sync.Mutex
	byTok map[applyToken][]byte // encoded fsm.Result
	ring  []outcomeItem         // in apply order; once full, next is the oldest
	next  int
	floor uint64
}

type outcomeItem struct {
	tok   applyToken
	index uint64
}

func (o *outcomeLog) init(floor uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byTok = make(map[applyToken][]byte)
	o.floor = floor
}

// record notes the result of an applied entry.
func (o *outcomeLog) record(l *raft.Log, r any) {
	tok, ok := tokenOf(l.Extensions)
	if !ok {
		return
	}
	res, ok := r.(*fsm.Result)
	if !ok {
		return
	}
	enc := encodeResult(res)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byTok == nil || l.Index < o.floor {
		return // replayed from before this process started
	}
	if _, dup := o.byTok[tok]; dup {
		return
	}
	item := outcomeItem{tok: tok, index: l.Index}
	if len(o.ring) < maxOutcomes {
		o.ring = append(o.ring, item)
	} else {
		old := o.ring[o.next]
		delete(o.byTok, old.tok)
		o.floor = max(o.floor, old.index+1)
		o.ring[o.next] = item
		o.next = (o.next + 1) % maxOutcomes
	}
	o.byTok[tok] = enc
}

// restored notes that the state up to index came from a snapshot, not
// from entries this log saw.
func (o *outcomeLog) restored(index uint64) {
	o.mu.Lock()
	o.floor = max(o.floor, index+1)
	o.mu.Unlock()
}

// lookup returns the result of the entry of tok, if it applied. known is
// false when tok's entry (above index after) may have applied unrecorded.
func (o *outcomeLog) lookup(tok applyToken, after uint64) (res []byte, known bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r, ok := o.byTok[tok]; ok {
		return r, true
	}
	return nil, after+1 >= o.floor
}

// maxFences bounds the tokens fenced at once; resolves happen only after
// a leader was lost, a few per command in flight then.
const maxFences = 1 << 14

// fenceSet holds the tokens of attempts that a resolve has answered for:
// this node must never append them afterwards.
type fenceSet struct {
	mu sync.RWMutex
	m  map[applyToken]time.Time
}

// add fences tok; false when the set is full of live fences.
func (f *fenceSet) add(tok applyToken, ttl time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.m == nil {
		f.m = make(map[applyToken]time.Time)
	}
	if len(f.m) >= maxFences {
		for t, at := range f.m {
			if now.Sub(at) > ttl {
				delete(f.m, t)
			}
		}
		if len(f.m) >= maxFences {
			return false
		}
	}
	f.m[tok] = now
	return true
}

// leaderEpoch is a context that ends whenever this node sees the leader
// change (Raft's leader observations); current returns the one for now.
type leaderEpoch struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
}

func (e *leaderEpoch) current() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil {
		e.ctx, e.cancel = context.WithCancel(context.Background())
	}
	return e.ctx
}

func (e *leaderEpoch) end() {
	e.mu.Lock()
	if e.cancel != nil {
		e.cancel()
	}
	e.ctx, e.cancel = nil, nil
	e.mu.Unlock()
}

// watchLeaderChanges ends the leader epoch at every leader change Raft
// reports, and once more when the node shuts down.
func (n *Node) watchLeaderChanges() {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	go func() {
		defer n.raft.DeregisterObserver(obs)
		for {
			select {
			case <-n.closed:
				n.leaderEpoch.end()
				return
			case <-ch:
				// A dropped observation (channel full) loses nothing:
				// the queued ones end the epoch too.
				n.leaderEpoch.end()
			}
		}
	}()
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
	s.n.outcomes.record(l, r)
	s.n.applied.fire()
	s.n.noteKeyringWrite([]*raft.Log{l})
	return r
}

func (s signalingFSM) ApplyBatch(logs []*raft.Log) []any {
	r := s.FSM.ApplyBatch(logs)
	for i, l := range logs {
		s.n.outcomes.record(l, r[i])
	}
	s.n.applied.fire()
	s.n.noteKeyringWrite(logs)
	return r
}

func (s signalingFSM) Restore(rc io.ReadCloser) error {
	err := s.FSM.Restore(rc)
	// Entries inside the snapshot were never seen here.
	s.n.outcomes.restored(s.FSM.AppliedIndex())
	s.n.applied.fire()
	if err == nil {
		s.n.afterRestore()
		s.n.kickKeyring() // the restored keyring may differ
	}
	return err
}
