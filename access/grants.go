package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// Just-in-time grants. A grant lets one token use one operation on one
// transit key for a while, after a second identity approved it:
//
//	sys/grant/<id>                          → Grant (pending, then active)
//	sys/grant-active/<accessor>/<key>/<op>  → {"id": <id>} while active
//
// The index makes the check on a denied request one local read. Expiry is
// judged at use by the node's clock; TidyGrants removes what expired.

// Grant states.
const (
	GrantPending = "pending"
	GrantActive  = "active"
)

// Grant limits.
const (
	MinGrantTTL     = time.Minute
	MaxGrantTTL     = 24 * time.Hour
	DefaultGrantTTL = time.Hour
	// GrantPendingTTL is how long a request waits for approval.
	GrantPendingTTL = 24 * time.Hour
	maxGrantReason  = 1024
)

// GrantOperations are the transit operations a grant may name.
var GrantOperations = []string{"encrypt", "decrypt", "rewrap", "datakey", "sign", "verify", "hmac"}

// Sentinel errors of grants.
var (
	ErrGrantNotFound = errors.New("access: no such grant")
	// ErrGrantState: approving a grant that is not pending (already
	// active, or its request expired).
	ErrGrantState = errors.New("access: the grant is not pending")
	// ErrTwoPerson: the approver is the same identity as the requester
	// (see ApproveGrant).
	ErrTwoPerson = errors.New("access: a grant must be approved by another identity than the one that requested it")
)

// Grant is one just-in-time grant.
type Grant struct {
	ID          string        `json:"id"`
	Key         string        `json:"key"`
	Operation   string        `json:"operation"`
	TTL         time.Duration `json:"ttl"`
	Reason      string        `json:"reason"`
	State       string        `json:"state"`
	Requester   string        `json:"requester"` // token accessor
	RequestedBy string        `json:"requested_by,omitempty"`
	RequestedAt time.Time     `json:"requested_at"`
	Approver    string        `json:"approver,omitempty"`
	ApprovedBy  string        `json:"approved_by,omitempty"`
	ApprovedAt  time.Time     `json:"approved_at,omitzero"`
	// ExpiresAt: for a pending grant, when the request lapses; for an
	// active one, when the grant ends.
	ExpiresAt time.Time `json:"expires_at"`
}

// Validate checks a grant as stored (and as requested).
func (g *Grant) Validate() error {
	switch {
	case !validPolicyName(g.ID):
		return fmt.Errorf("%w: bad grant id", ErrInvalidRequest)
	case g.Key == "" || len(g.Key) > 256 || strings.ContainsAny(g.Key, "/ \t\r\n"):
		return fmt.Errorf("%w: key must be a transit key name", ErrInvalidRequest)
	case !slices.Contains(GrantOperations, g.Operation):
		return fmt.Errorf("%w: operation must be one of %s", ErrInvalidRequest, strings.Join(GrantOperations, ", "))
	case g.TTL < MinGrantTTL || g.TTL > MaxGrantTTL:
		return fmt.Errorf("%w: ttl must be between %s and %s", ErrInvalidRequest, MinGrantTTL, MaxGrantTTL)
	case strings.TrimSpace(g.Reason) == "" || len(g.Reason) > maxGrantReason:
		return fmt.Errorf("%w: a reason of 1 to %d bytes is required", ErrInvalidRequest, maxGrantReason)
	case g.State != GrantPending && g.State != GrantActive:
		return fmt.Errorf("%w: bad grant state", ErrInvalidRequest)
	case g.Requester == "":
		return fmt.Errorf("%w: a grant needs a requester", ErrInvalidRequest)
	case g.State == GrantActive && (g.Approver == "" || g.Approver == g.Requester):
		return fmt.Errorf("%w: an active grant needs an approver other than the requester", ErrInvalidRequest)
	}
	return nil
}

// DecodeGrant decodes and validates a stored grant record.
func DecodeGrant(b []byte) (*Grant, error) {
	var g Grant
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("%w: grant record: %v", ErrInvalidRequest, err)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &g, nil
}

// Expired reports whether the grant (pending or active) lapsed at now.
func (g *Grant) Expired(now time.Time) bool { return !now.Before(g.ExpiresAt) }

func grantIndexKey(requester, key, op string) string {
	return fsm.RecordGrantActive + requester + "/" + key + "/" + op
}

// RequestGrant stores a pending grant for requester and returns it. The
// request's audit event commits with it.
func (svc *Service) RequestGrant(ctx context.Context, requester *TokenEntry, key, op string, ttl time.Duration, reason string, now time.Time) (*Grant, error) {
	if ttl == 0 {
		ttl = DefaultGrantTTL
	}
	idb := make([]byte, 12)
	if _, err := rand.Read(idb); err != nil {
		return nil, err
	}
	g := &Grant{ID: hex.EncodeToString(idb), Key: key, Operation: op, TTL: ttl, Reason: reason, State: GrantPending,
		Requester: requester.Accessor, RequestedBy: requester.DisplayName, RequestedAt: now.UTC(),
		ExpiresAt: now.UTC().Add(GrantPendingTTL)}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	v, _ := json.Marshal(g)
	if _, err := svc.st.Commit(ctx, &store.Txn{Expect: []fsm.Cond{{Key: fsm.RecordGrant + g.ID}},
		Writes: []store.Write{{Key: fsm.RecordGrant + g.ID, Value: v}}}); err != nil {
		return nil, err
	}
	return g, nil
}

// ReadGrant returns a grant and its revision, or ErrGrantNotFound.
func (svc *Service) ReadGrant(id string) (*Grant, uint64, error) {
	if !validPolicyName(id) {
		return nil, 0, ErrGrantNotFound
	}
	v, rev, err := svc.st.Read(fsm.RecordGrant + id)
	if err != nil {
		return nil, 0, err
	}
	if v == nil {
		return nil, 0, ErrGrantNotFound
	}
	g, err := DecodeGrant(v)
	if err != nil {
		return nil, 0, err
	}
	return g, rev, nil
}

// ListGrants returns every stored grant (expired ones until the tidy
// pass removes them), in ID order.
func (svc *Service) ListGrants() ([]*Grant, error) {
	ids, err := svc.st.List(fsm.RecordGrant)
	if err != nil {
		return nil, err
	}
	out := make([]*Grant, 0, len(ids))
	for _, id := range ids {
		g, _, err := svc.ReadGrant(id)
		if errors.Is(err, ErrGrantNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// ApproveGrant activates a pending grant for its TTL from now. The
// two-person rule: the approver must be another identity than the
// requester, not merely another token: not in the same token tree (a
// parent, a child, a sibling from one creator) and not the same client
// certificate. It returns ErrGrantNotFound, ErrGrantState, ErrTwoPerson
// (ErrIdentityUnresolved when a token's chain cannot be followed) or a
// commit error.
func (svc *Service) ApproveGrant(ctx context.Context, id string, approver *TokenEntry, now time.Time) (*Grant, error) {
	g, rev, err := svc.ReadGrant(id)
	if err != nil {
		return nil, err
	}
	if g.State != GrantPending || g.Expired(now) {
		return nil, ErrGrantState
	}
	if err := svc.checkTwoPerson(g.Requester, approver); err != nil {
		return nil, err
	}
	g.State, g.Approver, g.ApprovedBy, g.ApprovedAt = GrantActive, approver.Accessor, approver.DisplayName, now.UTC()
	g.ExpiresAt = now.UTC().Add(g.TTL)
	v, _ := json.Marshal(g)
	idx, _ := json.Marshal(map[string]string{"id": g.ID})
	ik := grantIndexKey(g.Requester, g.Key, g.Operation)
	irev, err := svc.st.Revision(ik)
	if err != nil {
		return nil, err
	}
	if _, err := svc.st.Commit(ctx, &store.Txn{Expect: []fsm.Cond{{Key: fsm.RecordGrant + id, Revision: rev}, {Key: ik, Revision: irev}},
		Writes: []store.Write{{Key: fsm.RecordGrant + id, Value: v}, {Key: ik, Value: idx}}}); err != nil {
		if errors.Is(err, fsm.ErrConflict) {
			return nil, ErrGrantState
		}
		return nil, err
	}
	return g, nil
}

// maxParentDepth bounds the walk up a token's parents.
const maxParentDepth = 64

// ErrIdentityUnresolved: the two-person rule could not tell who a token
// stands for (a parent in its chain is gone, or the chain is deeper than
// maxParentDepth); the approval is refused rather than guessed.
var ErrIdentityUnresolved = fmt.Errorf("%w: the token's chain of parents cannot be resolved (a parent was revoked, or it is more than %d deep)", ErrTwoPerson, maxParentDepth)

// twoPersonError is a refusal under the two-person rule, saying which
// part of it the approval broke. It is ErrTwoPerson to errors.Is, and
// kind too when set.
type twoPersonError struct {
	msg  string
	kind error
}

func (e *twoPersonError) Error() string { return "access: " + e.msg }

func (e *twoPersonError) Is(target error) bool {
	return target == ErrTwoPerson || (e.kind != nil && target == e.kind)
}

// The refusals of checkTwoPerson, one per cause.
var (
	errSameToken = &twoPersonError{msg: "the approving token is the one that requested the grant: another identity must approve it"}
	errSameTree  = &twoPersonError{msg: "the approving token is the requester's identity (in the token tree of the requester's token: " +
		"its parent, a child, a sibling, or an orphan made in that tree): another identity must approve it"}
	errSameCert = &twoPersonError{msg: "the approving token comes from a login with the requester's client certificate: another identity must approve it"}
	// The requester's accessor leads to no token: revoked, expired, or a
	// token made at init, which has no accessor record until the tidy
	// pass adds one.
	errRequesterGone = &twoPersonError{msg: "the requester's token cannot be found (revoked or expired, or made at init and not indexed by a tidy pass yet), " +
		"so the two-person rule cannot be checked: request the grant again with a live token"}
)

// unresolved is ErrIdentityUnresolved for the approver's token or the
// requester's, with what to do about it.
func unresolved(requester bool) error {
	whose, then := "the approving", "another identity must approve it"
	if requester {
		whose, then = "the requester's", "request the grant again with a token whose chain is whole"
	}
	return &twoPersonError{kind: ErrIdentityUnresolved, msg: fmt.Sprintf("who %s token stands for cannot be told: "+
		"a token in its chain of parents was revoked, or the chain is more than %d deep; %s", whose, maxParentDepth, then)}
}

// checkTwoPerson refuses an approval by the requester's own identity.
// A token stands for the top of its token tree (its parents followed up
// to the orphan that began it, and from an orphan a non-root token made,
// to that token), so a parent, a child and siblings made by one creator
// are one identity; a tree that began with a certificate
// login stands also for that certificate (its fingerprint, and its
// common name under the role), so the same person logging in twice is
// one identity. The requester's token must still exist.
func (svc *Service) checkTwoPerson(requester string, approver *TokenEntry) error {
	if approver.Accessor == requester {
		return errSameToken
	}
	a, err := svc.tokenIdentity(approver)
	if errors.Is(err, ErrIdentityUnresolved) {
		return unresolved(false)
	}
	if err != nil {
		return err
	}
	re, err := svc.LookupAccessor(requester)
	if errors.Is(err, ErrPermissionDenied) {
		// No token behind the accessor. An approver under it (a child of
		// a token made at init, which has no accessor record yet) is
		// still the requester's identity.
		if slices.Contains(a, "token:"+requester) {
			return errSameTree
		}
		return errRequesterGone
	}
	if err != nil {
		return err
	}
	r, err := svc.tokenIdentity(re)
	if errors.Is(err, ErrIdentityUnresolved) {
		return unresolved(true)
	}
	if err != nil {
		return err
	}
	for _, id := range a {
		if slices.Contains(r, id) {
			if strings.HasPrefix(id, "cert-") {
				return errSameCert
			}
			return errSameTree
		}
	}
	return nil
}

// tokenIdentity is what e stands for in the two-person rule: the top of
// its tree and, for a tree begun by a certificate login, the certificate.
// It returns ErrIdentityUnresolved when the chain cannot be followed.
func (svc *Service) tokenIdentity(e *TokenEntry) ([]string, error) {
	top := e
	for depth := 0; top.Parent != "" || top.CreatedBy != ""; depth++ {
		if depth >= maxParentDepth {
			return nil, ErrIdentityUnresolved
		}
		// An orphan made by a non-root token is its creator's, as a
		// child is its parent's: otherwise create-orphan would be a way
		// to a second identity.
		up := top.Parent
		if up == "" {
			up = top.CreatedBy
		}
		p, err := svc.LookupAccessor(up)
		if errors.Is(err, ErrPermissionDenied) {
			// Tokens made at init have no accessor record until the
			// tidy pass adds one; such a parent still lists its child.
			// A revoked parent or creator does not (revocation removes
			// the index; revoke-orphan turns parent into creator).
			rev := uint64(0)
			if top.Parent != "" {
				if rev, err = svc.st.Revision(fsm.RecordTokenChildren + top.Parent + "/" + top.Accessor); err != nil {
					return nil, err
				}
			}
			if rev == 0 {
				return nil, ErrIdentityUnresolved
			}
			return []string{"token:" + top.Parent}, nil
		}
		if err != nil {
			return nil, err
		}
		top = p
	}
	ids := []string{"token:" + top.Accessor}
	if top.Path == "auth/cert/login" {
		if fp := top.Meta[MetaCertFingerprint]; fp != "" {
			ids = append(ids, "cert-sha256:"+fp)
		}
		if cn := top.Meta["common_name"]; cn != "" {
			ids = append(ids, "cert-cn:"+top.Meta["cert_name"]+"/"+cn)
		}
	}
	return ids, nil
}

// RevokeGrant ends a grant (pending or active) now.
func (svc *Service) RevokeGrant(ctx context.Context, id string) error {
	g, rev, err := svc.ReadGrant(id)
	if err != nil {
		return err
	}
	return svc.deleteGrant(ctx, g, rev)
}

func (svc *Service) deleteGrant(ctx context.Context, g *Grant, rev uint64) error {
	txn := &store.Txn{Expect: []fsm.Cond{{Key: fsm.RecordGrant + g.ID, Revision: rev}}, Writes: svc.grantDeleteWrites(g)}
	_, err := svc.st.Commit(ctx, txn)
	return err
}

// grantDeleteWrites removes grant g and, when active, its index entry
// (if the entry is still g's).
func (svc *Service) grantDeleteWrites(g *Grant) []store.Write {
	w := []store.Write{{Key: fsm.RecordGrant + g.ID, Delete: true}}
	if g.State == GrantActive {
		ik := grantIndexKey(g.Requester, g.Key, g.Operation)
		if v, _, err := svc.st.Read(ik); err == nil && v != nil {
			var idx struct{ ID string }
			if json.Unmarshal(v, &idx) == nil && idx.ID == g.ID {
				w = append(w, store.Write{Key: ik, Delete: true})
			}
		}
	}
	return w
}

// ActiveGrant returns the grant that lets the token with accessor use op
// on key at now, or nil. One local read when there is none.
func (svc *Service) ActiveGrant(accessor, key, op string, now time.Time) (*Grant, error) {
	if accessor == "" || key == "" || strings.Contains(key, "/") {
		return nil, nil
	}
	v, _, err := svc.st.Read(grantIndexKey(accessor, key, op))
	if err != nil || v == nil {
		return nil, err
	}
	var idx struct{ ID string }
	if err := json.Unmarshal(v, &idx); err != nil {
		return nil, nil
	}
	g, _, err := svc.ReadGrant(idx.ID)
	if errors.Is(err, ErrGrantNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if g.State != GrantActive || g.Requester != accessor || g.Key != key || g.Operation != op || g.Expired(now) {
		return nil, nil
	}
	return g, nil
}

// TidyGrants removes grants (pending or active) that lapsed at now, each
// with an audit event "sys/grants/expire" in the same Raft entry, and
// ends an expired break-glass session. It returns how many grants ended.
func (svc *Service) TidyGrants(ctx context.Context, now time.Time) (int, error) {
	ids, err := svc.st.List(fsm.RecordGrant)
	if err != nil {
		return 0, err
	}
	ended := 0
	for _, id := range ids {
		g, rev, err := svc.ReadGrant(id)
		if errors.Is(err, ErrGrantNotFound) {
			continue
		}
		if err != nil {
			svc.log.Warn("unreadable grant record left in place", "id", id, "error", err)
			continue
		}
		if !g.Expired(now) {
			continue
		}
		ev := &audit.Event{Time: now.UTC(), Node: svc.nodeID, Operation: "sys/grants/expire", Identity: "tidy",
			Path: "sys/grants/" + g.ID, Key: g.Key, Outcome: audit.Allowed, Status: 200,
			Details: map[string]string{"grant": g.ID, "state": g.State, "operation": g.Operation, "requester": g.Requester}}
		if err := svc.deleteGrant(audit.WithEvent(ctx, ev), g, rev); err != nil && !errors.Is(err, fsm.ErrConflict) {
			return ended, err
		}
		ended++
	}
	if err := svc.tidyBreakGlass(ctx, now); err != nil {
		return ended, err
	}
	return ended, nil
}
