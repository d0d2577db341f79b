package cluster

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyraft/keyraft/access"
)

// Break-glass: an emergency policy that only a threshold of the unseal
// (or recovery) share holders can switch on, for a bounded time, on a
// fresh token — generate-root's ceremony with a policy and a deadline
// instead of a root token. The ceremony is here (the shares are checked
// against the seal); the configuration, the session and its token are
// package access's.

// breakGlassOps holds each node's break-glass attempt in progress (in
// memory only, like generate-root's: shares never leave this process).
var breakGlassOps sync.Map // *Node → *breakGlassOp

type breakGlassOp struct {
	genRootOp
	duration time.Duration
}

// BreakGlassInit starts an attempt for duration (0: the configured one;
// at most MaxBreakGlassDuration) and returns its nonce, the one-time pad
// that will decode the token, and the shares required. While an attempt
// is in progress on this node it returns ErrBreakGlassInProgress (only
// BreakGlassCancel ends it early). It returns ErrBreakGlassNotConfigured,
// ErrInvalidRequest, ErrSealed or ErrNotInitialized.
func (n *Node) BreakGlassInit(duration time.Duration) (nonce, otp string, required int, err error) {
	if n.barrier.Sealed() {
		return "", "", 0, ErrSealed
	}
	cfg, err := n.sealConfig()
	if err != nil || cfg == nil {
		return "", "", 0, ErrNotInitialized
	}
	bc, err := n.access.BreakGlassConfig()
	if err != nil {
		return "", "", 0, err
	}
	if bc == nil {
		return "", "", 0, access.ErrBreakGlassNotConfigured
	}
	if duration == 0 {
		duration = bc.Duration
	}
	if duration < time.Minute || duration > access.MaxBreakGlassDuration {
		return "", "", 0, fmt.Errorf("%w: duration must be between 1m and %s", ErrInvalidRequest, access.MaxBreakGlassDuration)
	}
	pad := make([]byte, tokenLen)
	if _, err := rand.Read(pad); err != nil {
		return "", "", 0, err
	}
	if nonce, err = randomID(); err != nil {
		return "", "", 0, err
	}
	op := &breakGlassOp{genRootOp: genRootOp{nonce: nonce, otp: pad}, duration: duration}
	if _, loaded := breakGlassOps.LoadOrStore(n, op); loaded {
		clear(pad)
		return "", "", 0, ErrBreakGlassInProgress
	}
	return nonce, base64.RawStdEncoding.EncodeToString(pad), cfg.Threshold, nil
}

// BreakGlassCancel drops the attempt in progress and its shares. It
// returns the nonce of the one it cancelled ("" when there was none).
func (n *Node) BreakGlassCancel() (nonce string) {
	old, ok := breakGlassOps.LoadAndDelete(n)
	if !ok {
		return ""
	}
	op := old.(*breakGlassOp)
	op.collector.Reset()
	return op.nonce
}

// endBreakGlass drops op once it completed or failed for good, unless a
// cancel (and maybe a new start) replaced it meanwhile.
func (n *Node) endBreakGlass(op *breakGlassOp) {
	breakGlassOps.CompareAndDelete(n, op)
	op.collector.Reset()
}

// BreakGlassProgress returns the attempt in progress: its nonce, shares
// given and required; ok is false when there is none.
func (n *Node) BreakGlassProgress() (nonce string, progress int, duration time.Duration, ok bool) {
	v, found := breakGlassOps.Load(n)
	if !found {
		return "", 0, 0, false
	}
	op := v.(*breakGlassOp)
	return op.nonce, op.collector.Progress(), op.duration, true
}

// BreakGlassUpdate takes one share. At the threshold it checks the shares
// against the stored root key (or recovery key), creates an orphan,
// non-renewable token with the emergency policy for the attempt's
// duration, records the session, and returns the token encoded with the
// one-time pad (DecodeRootToken reverses it). It returns ErrRekeyNonce,
// ErrInvalidUnsealKey, ErrBreakGlassNotConfigured, ErrBreakGlassActive
// (a session is on; the attempt is dropped) or a commit error.
func (n *Node) BreakGlassUpdate(ctx context.Context, nonce string, share []byte, now time.Time) (progress, required int, encoded string, s *access.BreakGlassSession, err error) {
	v, found := breakGlassOps.Load(n)
	if !found {
		return 0, 0, "", nil, ErrRekeyNonce
	}
	op := v.(*breakGlassOp)
	if subtle.ConstantTimeCompare([]byte(op.nonce), []byte(nonce)) != 1 {
		return 0, 0, "", nil, ErrRekeyNonce
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	cfg, err := n.sealConfig()
	if err != nil || cfg == nil {
		return 0, 0, "", nil, ErrNotInitialized
	}
	// A malformed share is refused alone (see GenerateRootUpdate).
	combined, err := op.collector.Add(share, cfg.Threshold)
	if err != nil {
		return op.collector.Progress(), cfg.Threshold, "", nil, fmt.Errorf("%w: %v", ErrInvalidUnsealKey, err)
	}
	if combined == nil {
		return op.collector.Progress(), cfg.Threshold, "", nil, nil
	}
	defer clear(combined)
	if err := n.checkCurrentKey(ctx, cfg, combined); err != nil {
		return 0, cfg.Threshold, "", nil, err
	}
	token, bs, err := n.access.IssueBreakGlass(ctx, op.duration, now)
	if errors.Is(err, access.ErrBreakGlassActive) {
		n.endBreakGlass(op)
	}
	if err != nil {
		return 0, cfg.Threshold, "", nil, err
	}
	out := make([]byte, tokenLen)
	subtle.XORBytes(out, []byte(token), op.otp)
	n.endBreakGlass(op)
	return 0, cfg.Threshold, base64.RawStdEncoding.EncodeToString(out), bs, nil
}
