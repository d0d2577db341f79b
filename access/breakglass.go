package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// Break-glass: an emergency policy that only a threshold of the unseal
// (or recovery) share holders can switch on, for a bounded time, on a
// fresh token. The ceremony (collecting and checking the shares) is the
// node's (cluster.Node.BreakGlassUpdate); its records and its token are
// here.
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
var ErrBreakGlassNotConfigured = errors.New("access: break-glass is not configured: set an emergency policy at sys/break-glass/config")

// ErrBreakGlassActive is returned by BreakGlassUpdate while a session is
// on: one session at a time, so that its token is the one the gauge and
// the tidy pass track.
var ErrBreakGlassActive = errors.New("access: a break-glass session is already active; it ends at its expiry (or revoke its token and wait for the tidy pass)")

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

// SetBreakGlassConfig stores the emergency policy. The policy must exist
// (or be "default"); root is refused: break-glass never mints root.
func (svc *Service) SetBreakGlassConfig(ctx context.Context, c BreakGlassConfig) error {
	if c.Policy == "" || c.Policy == "root" {
		return fmt.Errorf("%w: policy must name an ACL policy other than root", ErrInvalidRequest)
	}
	if _, _, err := svc.ReadPolicy(c.Policy); err != nil {
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
	_, err := svc.st.Commit(ctx, &store.Txn{Writes: []store.Write{{Key: fsm.RecordBreakGlassConfig, Value: v}}})
	return err
}

// BreakGlassConfig returns the configuration, or nil when none is set.
func (svc *Service) BreakGlassConfig() (*BreakGlassConfig, error) {
	v, _, err := svc.st.Read(fsm.RecordBreakGlassConfig)
	if err != nil || v == nil {
		return nil, err
	}
	var c BreakGlassConfig
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("access: reading break-glass config: %w", err)
	}
	return &c, nil
}

// BreakGlassSession returns the session on at now, or nil.
func (svc *Service) BreakGlassSession(now time.Time) (*BreakGlassSession, error) {
	s, _, err := svc.readBreakGlassSession()
	if err != nil || s == nil || !now.Before(s.ExpiresAt) {
		return nil, err
	}
	return s, nil
}

func (svc *Service) readBreakGlassSession() (*BreakGlassSession, uint64, error) {
	v, rev, err := svc.st.Read(fsm.RecordBreakGlassActive)
	if err != nil || v == nil {
		return nil, 0, err
	}
	var s BreakGlassSession
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, 0, fmt.Errorf("access: reading break-glass session: %w", err)
	}
	return &s, rev, nil
}

// IssueBreakGlass starts a session once the ceremony has checked the
// shares: a token with the emergency policy for duration (0: the
// configured one), and the session record, committed only if no session
// is on. It returns the token, ErrBreakGlassNotConfigured or
// ErrBreakGlassActive (a session is on, or another node's activation won
// the race).
func (svc *Service) IssueBreakGlass(ctx context.Context, duration time.Duration, now time.Time) (string, *BreakGlassSession, error) {
	bc, err := svc.BreakGlassConfig()
	if err != nil {
		return "", nil, err
	}
	if bc == nil {
		return "", nil, ErrBreakGlassNotConfigured
	}
	if duration == 0 {
		duration = bc.Duration
	}
	now = now.UTC()
	// One session at a time: a second one would overwrite the record of
	// the first, whose token would stay valid but untracked.
	cur, curRev, err := svc.readBreakGlassSession()
	if err != nil {
		return "", nil, err
	}
	if cur != nil && now.Before(cur.ExpiresAt) {
		return "", nil, ErrBreakGlassActive
	}
	// The token first (no event: the session record carries it), then
	// the session, conditional on the session record being unchanged.
	token, e, err := svc.CreateToken(audit.WithEvent(ctx, nil), TokenRequest{
		Policies: []string{"default", bc.Policy}, TTL: duration, ExplicitMaxTTL: duration,
		DisplayName: "break-glass", Path: "sys/break-glass", Now: now,
		Meta: map[string]string{"break_glass": "true"},
	})
	if err != nil {
		return "", nil, err
	}
	bs := &BreakGlassSession{Accessor: e.Accessor, Policy: bc.Policy, StartedAt: now, ExpiresAt: e.ExpireTime}
	sv, _ := json.Marshal(bs)
	// The request's event is recorded by the caller once it knows the
	// session (accessor, expiry), so it is not attached here.
	if _, err := svc.st.Commit(audit.WithEvent(ctx, nil), &store.Txn{Expect: []fsm.Cond{{Key: fsm.RecordBreakGlassActive, Revision: curRev}},
		Writes: []store.Write{{Key: fsm.RecordBreakGlassActive, Value: sv}}}); err != nil {
		svc.RevokeToken(context.Background(), token, false)
		if errors.Is(err, fsm.ErrConflict) {
			err = ErrBreakGlassActive // another node's activation won the race
		}
		return "", nil, err
	}
	svc.log.Warn("BREAK-GLASS ACTIVATED: an emergency token was issued from the shares",
		"policy", bc.Policy, "accessor", e.Accessor, "expires_at", bs.ExpiresAt.Format(time.RFC3339))
	return token, bs, nil
}

// tidyBreakGlass ends a session whose time is up: its record goes, with
// an audit event, and a log line says so. Its token is refused since its
// expiry and revoked by TidyTokens.
func (svc *Service) tidyBreakGlass(ctx context.Context, now time.Time) error {
	s, rev, err := svc.readBreakGlassSession()
	if err != nil || s == nil || now.Before(s.ExpiresAt) {
		return err
	}
	ev := &audit.Event{Time: now.UTC(), Node: svc.nodeID, Operation: "sys/break-glass/expire", Identity: "tidy",
		Path: "sys/break-glass/active", Outcome: audit.Allowed, Status: 200,
		Details: map[string]string{"accessor": s.Accessor, "policy": s.Policy, "expired_at": s.ExpiresAt.Format(time.RFC3339)}}
	_, err = svc.st.Commit(audit.WithEvent(ctx, ev), &store.Txn{Expect: []fsm.Cond{{Key: fsm.RecordBreakGlassActive, Revision: rev}},
		Writes: []store.Write{{Key: fsm.RecordBreakGlassActive, Delete: true}}})
	if err != nil && !errors.Is(err, fsm.ErrConflict) {
		return err
	}
	svc.log.Warn("break-glass session ended", "accessor", s.Accessor, "policy", s.Policy)
	return nil
}
