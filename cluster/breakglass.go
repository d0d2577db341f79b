package cluster

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
)

// Break-glass: an emergency policy that only a threshold of the unseal
// (or recovery) share holders can switch on, for a bounded time, on a
// fresh token — generate-root's ceremony with a policy and a deadline
// instead of a root token.
//
//	sys/break-glass/config   → BreakGlassConfig (the emergency policy)
//	sys/break-glass/active   → BreakGlassSession while one is on

// Break-glass durations.
const (
	DefaultBreakGlassDuration = time.Hour
	MaxBreakGlassDuration     = 24 * time.Hour
)

// ErrBreakGlassNotConfigured is returned by BreakGlassInit before an
// emergency policy is configured.
var ErrBreakGlassNotConfigured = errors.New("cluster: break-glass is not configured: set an emergency policy at sys/break-glass/config")

// ErrBreakGlassActive is returned by BreakGlassUpdate while a session is
// on: one session at a time, so that its token is the one the gauge and
// the tidy pass track.
var ErrBreakGlassActive = errors.New("cluster: a break-glass session is already active; it ends at its expiry (or revoke its token and wait for the tidy pass)")

// BreakGlassConfig names the emergency policy and how long a session
// lasts unless the attempt asks for less.
type BreakGlassConfig struct {
	Policy   string        `json:"policy"`
	Duration time.Duration `json:"duration"`
}

// BreakGlassSession is an active break-glass: which token carries the
// emergency policy and until when.
type BreakGlassSession struct {
	Accessor  string    `json:"accessor"`
	Policy    string    `json:"policy"`
	StartedAt time.Time `json:"started_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// breakGlassOps holds each node's break-glass attempt in progress (in
// memory only, like generate-root's: shares never leave this process).
var breakGlassOps sync.Map // *Node → *breakGlassOp

type breakGlassOp struct {
	genRootOp
	duration time.Duration
}

// SetBreakGlassConfig stores the emergency policy. The policy must exist
// (or be "default"); root is refused: break-glass never mints root.
func (n *Node) SetBreakGlassConfig(ctx context.Context, c BreakGlassConfig) error {
	if c.Policy == "" || c.Policy == "root" {
		return fmt.Errorf("%w: policy must name an ACL policy other than root", ErrInvalidRequest)
	}
	if _, _, err := n.ReadPolicy(c.Policy); err != nil {
		if errors.Is(err, ErrPolicyNotFound) {
			return fmt.Errorf("%w: no policy named %q; write it first", ErrInvalidRequest, c.Policy)
		}
		return err
	}
	if c.Duration == 0 {
		c.Duration = DefaultBreakGlassDuration
	}
	if c.Duration < time.Minute || c.Duration > MaxBreakGlassDuration {
		return fmt.Errorf("%w: duration must be between 1m and %s", ErrInvalidRequest, MaxBreakGlassDuration)
	}
	v, _ := json.Marshal(c)
	_, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: fsm.RecordBreakGlassConfig, Value: v}}})
	return err
}

// BreakGlassConfig returns the configuration, or nil when none is set.
func (n *Node) BreakGlassConfig() (*BreakGlassConfig, error) {
	v, _, err := n.Read(fsm.RecordBreakGlassConfig)
	if err != nil || v == nil {
		return nil, err
	}
	var c BreakGlassConfig
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("cluster: reading break-glass config: %w", err)
	}
	return &c, nil
}

// BreakGlassSession returns the session on at now, or nil.
func (n *Node) BreakGlassSession(now time.Time) (*BreakGlassSession, error) {
	s, _, err := n.readBreakGlassSession()
	if err != nil || s == nil || !now.Before(s.ExpiresAt) {
		return nil, err
	}
	return s, nil
}

func (n *Node) readBreakGlassSession() (*BreakGlassSession, uint64, error) {
	v, rev, err := n.Read(fsm.RecordBreakGlassActive)
	if err != nil || v == nil {
		return nil, 0, err
	}
	var s BreakGlassSession
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, 0, fmt.Errorf("cluster: reading break-glass session: %w", err)
	}
	return &s, rev, nil
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
	bc, err := n.BreakGlassConfig()
	if err != nil {
		return "", "", 0, err
	}
	if bc == nil {
		return "", "", 0, ErrBreakGlassNotConfigured
	}
	if duration == 0 {
		duration = bc.Duration
	}
	if duration < time.Minute || duration > MaxBreakGlassDuration {
		return "", "", 0, fmt.Errorf("%w: duration must be between 1m and %s", ErrInvalidRequest, MaxBreakGlassDuration)
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
func (n *Node) BreakGlassUpdate(ctx context.Context, nonce string, share []byte, now time.Time) (progress, required int, encoded string, s *BreakGlassSession, err error) {
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
	bc, err := n.BreakGlassConfig()
	if err != nil {
		return 0, cfg.Threshold, "", nil, err
	}
	if bc == nil {
		return 0, cfg.Threshold, "", nil, ErrBreakGlassNotConfigured
	}
	now = now.UTC()
	// One session at a time: a second one would overwrite the record of
	// the first, whose token would stay valid but untracked.
	cur, curRev, err := n.readBreakGlassSession()
	if err != nil {
		return 0, cfg.Threshold, "", nil, err
	}
	if cur != nil && now.Before(cur.ExpiresAt) {
		n.endBreakGlass(op)
		return 0, cfg.Threshold, "", nil, ErrBreakGlassActive
	}
	// The token first (no event: the session record carries it), then
	// the session, conditional on the session record being unchanged.
	token, e, err := n.CreateToken(audit.WithEvent(ctx, nil), TokenRequest{
		Policies: []string{"default", bc.Policy}, TTL: op.duration, ExplicitMaxTTL: op.duration,
		DisplayName: "break-glass", Path: "sys/break-glass", Now: now,
		Meta: map[string]string{"break_glass": "true"},
	})
	if err != nil {
		return 0, cfg.Threshold, "", nil, err
	}
	s = &BreakGlassSession{Accessor: e.Accessor, Policy: bc.Policy, StartedAt: now, ExpiresAt: e.ExpireTime}
	sv, _ := json.Marshal(s)
	// The request's event is recorded by the caller once it knows the
	// session (accessor, expiry), so it is not attached here.
	if _, err := n.Commit(audit.WithEvent(ctx, nil), &Txn{Expect: []fsm.Cond{{Key: fsm.RecordBreakGlassActive, Revision: curRev}},
		Writes: []Write{{Key: fsm.RecordBreakGlassActive, Value: sv}}}); err != nil {
		n.RevokeToken(context.Background(), token, false)
		if errors.Is(err, fsm.ErrConflict) {
			n.endBreakGlass(op)
			err = ErrBreakGlassActive // another node's activation won the race
		}
		return 0, cfg.Threshold, "", nil, err
	}
	out := make([]byte, tokenLen)
	subtle.XORBytes(out, []byte(token), op.otp)
	n.endBreakGlass(op)
	n.log.Warn("BREAK-GLASS ACTIVATED: an emergency token was issued from the shares",
		"policy", bc.Policy, "accessor", e.Accessor, "expires_at", s.ExpiresAt.Format(time.RFC3339))
	return 0, cfg.Threshold, base64.RawStdEncoding.EncodeToString(out), s, nil
}

// tidyBreakGlass ends a session whose time is up: its record goes, with
// an audit event, and a log line says so. Its token is refused since its
// expiry and revoked by TidyTokens.
func (n *Node) tidyBreakGlass(ctx context.Context, now time.Time) error {
	s, rev, err := n.readBreakGlassSession()
	if err != nil || s == nil || now.Before(s.ExpiresAt) {
		return err
	}
	ev := &audit.Event{Time: now.UTC(), Node: n.cfg.NodeID, Operation: "sys/break-glass/expire", Identity: "tidy",
		Path: "sys/break-glass/active", Outcome: audit.Allowed, Status: 200,
		Details: map[string]string{"accessor": s.Accessor, "policy": s.Policy, "expired_at": s.ExpiresAt.Format(time.RFC3339)}}
	_, err = n.Commit(audit.WithEvent(ctx, ev), &Txn{Expect: []fsm.Cond{{Key: fsm.RecordBreakGlassActive, Revision: rev}},
		Writes: []Write{{Key: fsm.RecordBreakGlassActive, Delete: true}}})
	if err != nil && !errors.Is(err, fsm.ErrConflict) {
		return err
	}
	n.log.Warn("break-glass session ended", "accessor", s.Accessor, "policy", s.Policy)
	return nil
}
