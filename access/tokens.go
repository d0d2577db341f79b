package access

import (
	"context"
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

// Token records besides auth/token/<hash>:
//
//	auth/accessor/<accessor>           → {"token_hash": <hash>}
//	auth/children/<parent>/<accessor>  → {} (one per child of a parent accessor)
//
// The accessor index answers lookup-accessor and revoke-accessor; the
// children index lets a revocation find the whole tree under a token.

// Token lifetimes, as Vault's defaults: a token lives 768 hours unless it
// asks for less, and no renewal takes it past 768 hours after creation.
const (
	DefaultTokenTTL = 768 * time.Hour
	MaxTokenTTL     = 768 * time.Hour
)

// maxTokenRetries bounds the read-modify-write retries of a token change
// that loses a race with another change of the same token.
const maxTokenRetries = 8

type accessorRecord struct {
	Hash string `json:"token_hash"`
}

// TokenRequest is what a new token is made of. The caller (the API) has
// checked the policies against the creator's.
type TokenRequest struct {
	Policies []string
	// ParentToken is the creating token; empty makes an orphan.
	ParentToken string
	// Creator is the accessor of a non-root token that makes an orphan
	// (TokenEntry.CreatedBy); ignored for a child.
	Creator        string
	TTL            time.Duration // 0: DefaultTokenTTL, or no expiry for a root-policy token
	ExplicitMaxTTL time.Duration
	// Period makes a periodic token (its TTL is Period, TTL is ignored);
	// the caller has checked that the creator may (sudo).
	Period      time.Duration
	NumUses     int
	BoundCIDRs  []string
	DisplayName string
	Meta        map[string]string
	Renewable   bool
	Path        string
	// Namespace is the namespace of the new token ("": root).
	Namespace string
	// Now is the node's time at the request: expiry is stamped here,
	// never computed by the state machine.
	Now time.Time
}

// expiry sets a new token's TTL, expiry and renewal cap from req, as
// Vault computes them: a periodic token lives Period (at most
// MaxTokenTTL) and has no cap but its explicit maximum; another lives TTL
// (DefaultTokenTTL when unset) within MaxTokenTTL and its explicit
// maximum; a root-policy token without either never expires.
func expiry(e *TokenEntry, req TokenRequest, now time.Time) {
	root := slices.Contains(e.Policies, "root")
	ttl := req.TTL
	if root && ttl == 0 && req.ExplicitMaxTTL == 0 && req.Period == 0 {
		return
	}
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if req.Period > 0 {
		e.Period = min(req.Period, MaxTokenTTL)
		ttl = e.Period
	} else {
		e.MaxExpireTime = now.Add(MaxTokenTTL)
	}
	if req.ExplicitMaxTTL > 0 && (e.MaxExpireTime.IsZero() || now.Add(req.ExplicitMaxTTL).Before(e.MaxExpireTime)) {
		e.MaxExpireTime = now.Add(req.ExplicitMaxTTL)
	}
	e.TTL = ttl
	e.ExpireTime = now.Add(ttl)
	if !e.MaxExpireTime.IsZero() && e.ExpireTime.After(e.MaxExpireTime) {
		e.ExpireTime = e.MaxExpireTime
	}
	e.Renewable = req.Renewable
}

// CreateToken makes a token and stores its entry, its accessor index and,
// for a child, its place under the parent, in one Raft entry that
// commits only if the parent still exists unchanged. It returns the token
// (the only time it exists outside the client), its entry,
// ErrPermissionDenied when the parent is gone, ErrInvalidRequest, or a
// commit error.
func (svc *Service) CreateToken(ctx context.Context, req TokenRequest) (string, *TokenEntry, error) {
	if req.TTL < 0 || req.ExplicitMaxTTL < 0 || req.NumUses < 0 {
		return "", nil, fmt.Errorf("%w: ttl, explicit_max_ttl and num_uses must not be negative", ErrInvalidRequest)
	}
	for attempt := 0; ; attempt++ {
		token, e, err := svc.createTokenOnce(ctx, req)
		if errors.Is(err, fsm.ErrConflict) && attempt < maxTokenRetries {
			continue
		}
		return token, e, err
	}
}

func (svc *Service) createTokenOnce(ctx context.Context, req TokenRequest) (string, *TokenEntry, error) {
	now := req.Now.UTC()
	token, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	e, err := NewTokenEntry(token, dedupe(req.Policies), now)
	if err != nil {
		return "", nil, err
	}
	e.DisplayName, e.Meta, e.Path = req.DisplayName, req.Meta, req.Path
	e.NumUses, e.BoundCIDRs, e.ExplicitMaxTTL = req.NumUses, req.BoundCIDRs, req.ExplicitMaxTTL
	e.Namespace = req.Namespace
	if req.ParentToken == "" {
		e.CreatedBy = req.Creator
	}
	if e.Path == "" {
		e.Path = "auth/token/create"
	}
	expiry(e, req, now)
	var txn store.Txn
	if e.Namespace != "" {
		// Bound to the namespace as it is now: the token is not made in
		// a namespace deleted meanwhile, and carries its id.
		ns, rev, err := svc.namespace(e.Namespace)
		if err != nil {
			return "", nil, err
		}
		if rev == 0 {
			return "", nil, fmt.Errorf("%w: no namespace named %q", ErrInvalidRequest, e.Namespace)
		}
		e.NamespaceID = ns.ID
		txn.Expect = append(txn.Expect, fsm.Cond{Key: fsm.RecordNamespace + e.Namespace, Revision: rev})
	}
	if req.ParentToken != "" {
		ph := hashToken(req.ParentToken)
		parent, prev, err := svc.readTokenEntry(ph)
		if err != nil {
			return "", nil, err
		}
		e.Parent = parent.Accessor
		// A child never outlives its parent: revoking the parent at its
		// expiry would revoke the child anyway. Its renewals are capped
		// by the parent's expiry then (renewHash), so a child lives as
		// long as both are renewed.
		if !parent.ExpireTime.IsZero() {
			if e.ExpireTime.IsZero() || parent.ExpireTime.Before(e.ExpireTime) {
				e.ExpireTime = parent.ExpireTime
			}
			if e.TTL == 0 {
				e.TTL = e.ExpireTime.Sub(now)
			}
		}
		txn.Expect = append(txn.Expect, fsm.Cond{Key: fsm.RecordToken + ph, Revision: prev})
		txn.Writes = append(txn.Writes, store.Write{Key: fsm.RecordTokenChildren + parent.Accessor + "/" + e.Accessor, Value: []byte("{}")})
	}
	h := hashToken(token)
	entryJSON, _ := json.Marshal(e)
	idx, _ := json.Marshal(accessorRecord{Hash: h})
	txn.Expect = append(txn.Expect, fsm.Cond{Key: fsm.RecordToken + h}, fsm.Cond{Key: fsm.RecordAccessor + e.Accessor})
	txn.Writes = append(txn.Writes,
		store.Write{Key: fsm.RecordToken + h, Value: entryJSON},
		store.Write{Key: fsm.RecordAccessor + e.Accessor, Value: idx})
	if _, err := svc.st.Commit(ctx, &txn); err != nil {
		return "", nil, err
	}
	return token, e, nil
}

func dedupe(l []string) []string {
	out := make([]string, 0, len(l))
	for _, s := range l {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// LookupAccessor returns the entry of the token with accessor acc. It
// returns ErrPermissionDenied when there is none, or ErrSealed.
func (svc *Service) LookupAccessor(acc string) (*TokenEntry, error) {
	h, err := svc.accessorHash(acc)
	if err != nil {
		return nil, err
	}
	e, _, err := svc.readTokenEntry(h)
	return e, err
}

func (svc *Service) accessorHash(acc string) (string, error) {
	if acc == "" || strings.Contains(acc, "/") || len(acc) > 128 {
		return "", ErrPermissionDenied
	}
	v, _, err := svc.st.Read(fsm.RecordAccessor + acc)
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", ErrPermissionDenied
	}
	var r accessorRecord
	if err := json.Unmarshal(v, &r); err != nil || r.Hash == "" {
		return "", fmt.Errorf("access: reading accessor index: %v", err)
	}
	return r.Hash, nil
}

// RevokeToken revokes a token and, unless orphan, every token made under
// it; with orphan its children become orphans instead (Vault's
// revoke-orphan). Revoking an unknown token returns ErrPermissionDenied.
func (svc *Service) RevokeToken(ctx context.Context, token string, orphan bool) error {
	if token == "" {
		return ErrPermissionDenied
	}
	return svc.revokeHash(ctx, hashToken(token), orphan, 0)
}

// RevokeAccessor is RevokeToken by accessor.
func (svc *Service) RevokeAccessor(ctx context.Context, acc string, orphan bool) error {
	h, err := svc.accessorHash(acc)
	if err != nil {
		return err
	}
	return svc.revokeHash(ctx, h, orphan, 0)
}

// revokeHash deletes the token at hash, its indexes and (unless orphan)
// its subtree, in one Raft entry. A non-zero rev makes it conditional on
// the token's record being unchanged.
func (svc *Service) revokeHash(ctx context.Context, hash string, orphan bool, rev uint64) error {
	for attempt := 0; ; attempt++ {
		txn, err := svc.revokeTxn(hash, orphan)
		if err != nil {
			return err
		}
		if rev != 0 {
			txn.Expect = append(txn.Expect, fsm.Cond{Key: fsm.RecordToken + hash, Revision: rev})
		}
		_, err = svc.st.Commit(ctx, txn)
		if errors.Is(err, fsm.ErrConflict) && rev == 0 && attempt < maxTokenRetries {
			continue
		}
		return err
	}
}

// maxRevokeTree bounds the tokens one revocation walks.
const maxRevokeTree = 100000

func (svc *Service) revokeTxn(hash string, orphan bool) (*store.Txn, error) {
	e, _, err := svc.readTokenEntry(hash)
	if err != nil {
		return nil, err
	}
	txn := &store.Txn{}
	del := func(h string, te *TokenEntry) {
		txn.Writes = append(txn.Writes,
			store.Write{Key: fsm.RecordToken + h, Delete: true},
			store.Write{Key: fsm.RecordAccessor + te.Accessor, Delete: true},
			store.Write{Key: fsm.RecordTokenChildren + te.Accessor + "/", Delete: true, Prefix: true})
	}
	del(hash, e)
	if e.Parent != "" {
		txn.Writes = append(txn.Writes, store.Write{Key: fsm.RecordTokenChildren + e.Parent + "/" + e.Accessor, Delete: true})
	}
	queue := []string{e.Accessor}
	for len(queue) > 0 {
		acc := queue[0]
		queue = queue[1:]
		kids, err := svc.st.List(fsm.RecordTokenChildren + acc + "/")
		if err != nil {
			return nil, err
		}
		for _, kid := range kids {
			h, err := svc.accessorHash(kid)
			if errors.Is(err, ErrPermissionDenied) {
				continue // a stale index entry; its prefix delete removes it
			}
			if err != nil {
				return nil, err
			}
			ke, krev, err := svc.readTokenEntry(h)
			if errors.Is(err, ErrPermissionDenied) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if orphan && acc == e.Accessor {
				ke.Parent = ""
				if !slices.Contains(e.Policies, "root") {
					ke.CreatedBy = e.Accessor // still its creator's identity
				}
				v, _ := json.Marshal(ke)
				txn.Expect = append(txn.Expect, fsm.Cond{Key: fsm.RecordToken + h, Revision: krev})
				txn.Writes = append(txn.Writes, store.Write{Key: fsm.RecordToken + h, Value: v})
				continue
			}
			del(h, ke)
			if len(txn.Writes) > 3*maxRevokeTree {
				return nil, fmt.Errorf("%w: more than %d tokens under this one", ErrInvalidRequest, maxRevokeTree)
			}
			queue = append(queue, ke.Accessor)
		}
	}
	return txn, nil
}

// revokeNamespaceTokensTxn prepares the revocation of every token of
// namespace ns, each with the tokens made under it (revokeTxn), and of
// the grants those tokens requested, as one transaction.
func (svc *Service) revokeNamespaceTokensTxn(ns string) (*store.Txn, error) {
	txn := &store.Txn{}
	revoked := map[string]bool{} // accessors
	err := svc.eachToken(func(h string, e *TokenEntry) error {
		if e.Namespace != ns || revoked[e.Accessor] {
			return nil
		}
		t, err := svc.revokeTxn(h, false)
		if errors.Is(err, ErrPermissionDenied) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, w := range t.Writes {
			if acc, ok := strings.CutPrefix(w.Key, fsm.RecordAccessor); ok && w.Delete && !w.Prefix {
				revoked[acc] = true
			}
		}
		txn.Expect = append(txn.Expect, t.Expect...)
		txn.Writes = append(txn.Writes, t.Writes...)
		if len(txn.Writes) > 3*maxRevokeTree {
			return fmt.Errorf("%w: more than %d tokens in namespace %s; revoke some first", ErrInvalidRequest, maxRevokeTree, ns)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(revoked) == 0 {
		return txn, nil
	}
	grants, err := svc.ListGrants()
	if err != nil {
		return nil, err
	}
	for _, g := range grants {
		if revoked[g.Requester] {
			txn.Writes = append(txn.Writes, svc.grantDeleteWrites(g)...)
		}
	}
	return txn, nil
}

// RenewToken extends a renewable token's life as Vault does (see
// renewal): a periodic token by its period, another to now + increment
// (without one, the TTL its last renewal granted), never past its
// maximum. It returns the new
// entry, ErrPermissionDenied for an unknown or expired token,
// ErrInvalidRequest for one that is not renewable, or a commit error.
func (svc *Service) RenewToken(ctx context.Context, token string, increment time.Duration, now time.Time) (*TokenEntry, error) {
	if token == "" {
		return nil, ErrPermissionDenied
	}
	return svc.renewHash(ctx, hashToken(token), increment, now)
}

// RenewAccessor is RenewToken by accessor.
func (svc *Service) RenewAccessor(ctx context.Context, acc string, increment time.Duration, now time.Time) (*TokenEntry, error) {
	h, err := svc.accessorHash(acc)
	if err != nil {
		return nil, err
	}
	return svc.renewHash(ctx, h, increment, now)
}

// renewal is the expiry a renewal at now grants, and the TTL it granted.
// As in Vault: a periodic token gets its period whatever the increment;
// another gets the increment counted from now (less than is left
// shortens it), or without one the TTL its last renewal granted (at
// first, its creation TTL); never past MaxExpireTime.
func renewal(e *TokenEntry, increment time.Duration, now time.Time) (time.Time, time.Duration) {
	ttl := increment
	switch {
	case e.Period > 0:
		ttl = e.Period
	case ttl == 0 && e.RenewTTL > 0:
		ttl = e.RenewTTL
	case ttl == 0:
		ttl = e.TTL
	}
	exp := now.Add(ttl)
	if !e.MaxExpireTime.IsZero() && exp.After(e.MaxExpireTime) {
		exp = e.MaxExpireTime
	}
	return exp, ttl
}

func (svc *Service) renewHash(ctx context.Context, hash string, increment time.Duration, now time.Time) (*TokenEntry, error) {
	if increment < 0 {
		return nil, fmt.Errorf("%w: increment must not be negative", ErrInvalidRequest)
	}
	for attempt := 0; ; attempt++ {
		e, rev, err := svc.readTokenEntry(hash)
		if err != nil {
			return nil, err
		}
		if e.Expired(now) {
			return nil, ErrPermissionDenied
		}
		if e.ExpireTime.IsZero() {
			return e, nil // no expiry: nothing to renew (Vault answers the entry)
		}
		if !e.Renewable {
			return nil, fmt.Errorf("%w: the token is not renewable", ErrInvalidRequest)
		}
		e.ExpireTime, e.RenewTTL = renewal(e, increment, now.UTC())
		e.LastRenewal = now.UTC()
		if e.Parent != "" {
			// Never past the parent's life as it is now. A parent that
			// cannot be found by accessor is one made at init before tidy
			// indexed it (root: no expiry); a revoked parent took its
			// children with it.
			if parent, err := svc.LookupAccessor(e.Parent); err == nil {
				if parent.Expired(now) {
					return nil, ErrPermissionDenied
				}
				if !parent.ExpireTime.IsZero() && e.ExpireTime.After(parent.ExpireTime) {
					e.ExpireTime = parent.ExpireTime
				}
			} else if !errors.Is(err, ErrPermissionDenied) {
				return nil, err
			}
		}
		v, _ := json.Marshal(e)
		_, err = svc.st.Commit(ctx, &store.Txn{Expect: []fsm.Cond{{Key: fsm.RecordToken + hash, Revision: rev}},
			Writes: []store.Write{{Key: fsm.RecordToken + hash, Value: v}}})
		if errors.Is(err, fsm.ErrConflict) && attempt < maxTokenRetries {
			continue
		}
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}

// UseToken spends one use of a token with num_uses, through Raft and
// conditionally on the record being unchanged, so that concurrent uses on
// any nodes never spend the same use twice; the last use revokes the
// token. A token without a use limit costs nothing. It returns
// ErrPermissionDenied when the token is gone (its last use was spent
// elsewhere), or a commit error.
func (svc *Service) UseToken(ctx context.Context, token string) error {
	h := hashToken(token)
	for attempt := 0; ; attempt++ {
		e, rev, err := svc.readTokenEntry(h)
		if err != nil {
			return err
		}
		if e.NumUses == 0 {
			return nil
		}
		if e.NumUses == 1 {
			err = svc.revokeHash(ctx, h, false, rev)
		} else {
			e.NumUses--
			v, _ := json.Marshal(e)
			_, err = svc.st.Commit(ctx, &store.Txn{Expect: []fsm.Cond{{Key: fsm.RecordToken + h, Revision: rev}},
				Writes: []store.Write{{Key: fsm.RecordToken + h, Value: v}}})
		}
		if errors.Is(err, fsm.ErrConflict) && attempt < 4*maxTokenRetries {
			continue
		}
		return err
	}
}

// TidyTokens revokes every token expired at now or whose namespace is
// gone (TokenNamespaceLive), with its children, and
// adds the accessor index of tokens that lack one (root tokens made at
// init). The leader runs it periodically; it returns how many tokens it
// revoked.
func (svc *Service) TidyTokens(ctx context.Context, now time.Time) (int, error) {
	hashes, err := svc.st.List(fsm.RecordToken)
	if err != nil {
		return 0, err
	}
	// gone counts the tokens of the pass that no longer exist: an expired
	// parent's children go with it, and a revoke that lost a race to
	// another node's counts only if the token is gone.
	gone := func() int {
		n := 0
		for _, h := range hashes {
			if r, err := svc.st.Revision(fsm.RecordToken + h); !strings.Contains(h, "/") && err == nil && r == 0 {
				n++
			}
		}
		return n
	}
	for _, h := range hashes {
		if strings.Contains(h, "/") {
			continue
		}
		e, rev, err := svc.readTokenEntry(h)
		if errors.Is(err, ErrPermissionDenied) {
			continue // revoked meanwhile, as a child of an earlier one
		}
		if err != nil {
			return gone(), err
		}
		// A token made while its namespace was being deleted, which the
		// deletion did not see: refused already, removed here.
		if live, err := svc.TokenNamespaceLive(e); err != nil {
			return gone(), err
		} else if !live {
			ev := &audit.Event{Time: now, Node: svc.nodeID, Operation: "auth/token/namespace-gone", Identity: "tidy",
				Path: "auth/token/tidy", Outcome: audit.Allowed, Status: 200,
				Details: map[string]string{"accessor": e.Accessor, "namespace": e.Namespace}}
			if err := svc.revokeHash(audit.WithEvent(ctx, ev), h, false, rev); err != nil && !errors.Is(err, fsm.ErrConflict) && !errors.Is(err, ErrPermissionDenied) {
				return gone(), err
			}
			continue
		}
		if e.Expired(now) {
			ev := &audit.Event{Time: now, Node: svc.nodeID, Operation: "auth/token/expire", Identity: "tidy",
				Path: "auth/token/tidy", Outcome: audit.Allowed, Status: 200,
				Details: map[string]string{"accessor": e.Accessor, "expired_at": e.ExpireTime.Format(time.RFC3339)}}
			if err := svc.revokeHash(audit.WithEvent(ctx, ev), h, false, rev); err != nil && !errors.Is(err, fsm.ErrConflict) && !errors.Is(err, ErrPermissionDenied) {
				return gone(), err
			}
			continue
		}
		if r, err := svc.st.Revision(fsm.RecordAccessor + e.Accessor); err == nil && r == 0 {
			idx, _ := json.Marshal(accessorRecord{Hash: h})
			_, err := svc.st.Commit(ctx, &store.Txn{Expect: []fsm.Cond{{Key: fsm.RecordToken + h, Revision: rev}, {Key: fsm.RecordAccessor + e.Accessor}},
				Writes: []store.Write{{Key: fsm.RecordAccessor + e.Accessor, Value: idx}}})
			if err != nil && !errors.Is(err, fsm.ErrConflict) {
				return gone(), err
			}
		}
	}
	return gone(), nil
}

// Tidy revokes expired tokens (TidyTokens) and ends expired grants and
// break-glass sessions (TidyGrants), logging what it did. Expiry is
// enforced at use by every node's clock; tidying only removes what is
// already refused, so a missed round costs nothing but space. The node
// runs it on the leader (cluster.Node.TidyLoop).
func (svc *Service) Tidy(ctx context.Context, now time.Time) {
	if k, err := svc.TidyTokens(ctx, now); err != nil {
		svc.log.Warn("token tidy incomplete", "error", err)
	} else if k > 0 {
		svc.log.Info("revoked expired tokens", "count", k)
	}
	if k, err := svc.TidyGrants(ctx, now); err != nil {
		svc.log.Warn("grant tidy incomplete", "error", err)
	} else if k > 0 {
		svc.log.Info("ended expired grants", "count", k)
	}
}

// ListTokens returns the entry of every stored token (expired ones until
// the tidy pass removes them), for reports such as the hygiene check.
// Entries name tokens by accessor only; no token is stored to return.
func (svc *Service) ListTokens() ([]*TokenEntry, error) {
	out := []*TokenEntry{}
	err := svc.eachToken(func(_ string, e *TokenEntry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// eachToken calls fn with the hash and entry of every stored token, in
// hash order; a token deleted meanwhile is skipped.
func (svc *Service) eachToken(fn func(hash string, e *TokenEntry) error) error {
	hashes, err := svc.st.List(fsm.RecordToken)
	if err != nil {
		return err
	}
	for _, h := range hashes {
		if strings.Contains(h, "/") {
			continue
		}
		e, _, err := svc.readTokenEntry(h)
		if errors.Is(err, ErrPermissionDenied) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(h, e); err != nil {
			return err
		}
	}
	return nil
}
