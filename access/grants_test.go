package access_test

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// TestGrantLifecycle: a request is pending (and grants nothing) until
// another identity approves it; the active grant lets the requester use
// one operation on one key until its TTL ends; a revoked grant is gone
// with its index.
func TestGrantLifecycle(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	_, re := mkToken(t, svc, access.TokenRequest{DisplayName: "alice"})
	_, ae := mkToken(t, svc, access.TokenRequest{DisplayName: "bob"})
	g, err := svc.RequestGrant(bg, re, "app", "decrypt", 0, "incident 42", t0)
	if err != nil {
		t.Fatal(err)
	}
	if g.State != access.GrantPending || g.TTL != access.DefaultGrantTTL || g.Requester != re.Accessor ||
		g.RequestedBy != "alice" || !g.ExpiresAt.Equal(t0.Add(access.GrantPendingTTL)) {
		t.Fatalf("pending grant %+v", g)
	}
	if got, rev, err := svc.ReadGrant(g.ID); err != nil || rev == 0 || got.State != access.GrantPending || got.Reason != "incident 42" {
		t.Fatalf("read: %+v %d %v", got, rev, err)
	}
	if a, err := svc.ActiveGrant(re.Accessor, "app", "decrypt", t0); err != nil || a != nil {
		t.Fatalf("a pending grant is active: %+v %v", a, err)
	}

	if _, err := svc.ApproveGrant(bg, g.ID, re, t0); !errors.Is(err, access.ErrTwoPerson) {
		t.Fatalf("self-approval: %v", err)
	}
	at := t0.Add(time.Hour)
	a, err := svc.ApproveGrant(bg, g.ID, ae, at)
	if err != nil {
		t.Fatal(err)
	}
	if a.State != access.GrantActive || a.Approver != ae.Accessor || a.ApprovedBy != "bob" || !a.ApprovedAt.Equal(at) ||
		!a.ExpiresAt.Equal(at.Add(access.DefaultGrantTTL)) {
		t.Fatalf("approved grant %+v", a)
	}
	end := at.Add(access.DefaultGrantTTL)
	if got, err := svc.ActiveGrant(re.Accessor, "app", "decrypt", end.Add(-time.Nanosecond)); err != nil || got == nil || got.ID != g.ID {
		t.Fatalf("active grant before its end: %+v %v", got, err)
	}
	for _, c := range []struct{ acc, key, op string }{
		{re.Accessor, "app", "encrypt"},
		{re.Accessor, "other", "decrypt"},
		{ae.Accessor, "app", "decrypt"},
		{"", "app", "decrypt"},
		{re.Accessor, "", "decrypt"},
		{re.Accessor, "app/x", "decrypt"},
	} {
		if got, err := svc.ActiveGrant(c.acc, c.key, c.op, at); err != nil || got != nil {
			t.Fatalf("ActiveGrant%v: %+v %v", c, got, err)
		}
	}
	if got, _ := svc.ActiveGrant(re.Accessor, "app", "decrypt", end); got != nil {
		t.Fatal("grant active at its end")
	}
	if _, err := svc.ApproveGrant(bg, g.ID, ae, at); !errors.Is(err, access.ErrGrantState) {
		t.Fatalf("second approval: %v", err)
	}

	if err := svc.RevokeGrant(bg, g.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.ReadGrant(g.ID); !errors.Is(err, access.ErrGrantNotFound) {
		t.Fatalf("read after revoke: %v", err)
	}
	if got, _ := svc.ActiveGrant(re.Accessor, "app", "decrypt", at); got != nil {
		t.Fatal("revoked grant active")
	}
	if keys, _ := m.List(fsm.RecordGrantActive); len(keys) != 0 {
		t.Fatalf("index left after revoke: %v", keys)
	}
	if err := svc.RevokeGrant(bg, g.ID); !errors.Is(err, access.ErrGrantNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	for _, id := range []string{"nope", "a/b", ""} {
		if _, err := svc.ApproveGrant(bg, id, ae, at); !errors.Is(err, access.ErrGrantNotFound) {
			t.Fatalf("approve %q: %v", id, err)
		}
	}
}

func TestRequestGrantInvalid(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	_, re := mkToken(t, svc, access.TokenRequest{})
	idx := m.Index()
	for _, c := range []struct {
		key, op, reason string
		ttl             time.Duration
	}{
		{"app", "destroy", "r", time.Hour},
		{"app", "decrypt", "r", 30 * time.Second},
		{"app", "decrypt", "r", access.MaxGrantTTL + time.Second},
		{"app", "decrypt", "", time.Hour},
		{"app", "decrypt", " \t", time.Hour},
		{"app", "decrypt", strings.Repeat("r", 1025), time.Hour},
		{"", "decrypt", "r", time.Hour},
		{"a/b", "decrypt", "r", time.Hour},
		{"a b", "decrypt", "r", time.Hour},
	} {
		if _, err := svc.RequestGrant(bg, re, c.key, c.op, c.ttl, c.reason, t0); !errors.Is(err, access.ErrInvalidRequest) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if _, err := svc.RequestGrant(bg, &access.TokenEntry{}, "app", "decrypt", time.Hour, "r", t0); !errors.Is(err, access.ErrInvalidRequest) {
		t.Errorf("request without a requester: %v", err)
	}
	if m.Index() != idx {
		t.Fatal("refused requests committed")
	}
	for _, ttl := range []time.Duration{access.MinGrantTTL, access.MaxGrantTTL} {
		if _, err := svc.RequestGrant(bg, re, "app", "sign", ttl, "r", t0); err != nil {
			t.Errorf("ttl %s: %v", ttl, err)
		}
	}
	if l, err := svc.ListGrants(); err != nil || len(l) != 2 {
		t.Fatalf("list: %d %v", len(l), err)
	}
}

// TestGrantPendingExpiry: a request not approved within GrantPendingTTL
// can no longer be approved.
func TestGrantPendingExpiry(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	_, re := mkToken(t, svc, access.TokenRequest{})
	_, ae := mkToken(t, svc, access.TokenRequest{})
	g, err := svc.RequestGrant(bg, re, "app", "decrypt", time.Hour, "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ApproveGrant(bg, g.ID, ae, t0.Add(access.GrantPendingTTL)); !errors.Is(err, access.ErrGrantState) {
		t.Fatalf("approval at the request's lapse: %v", err)
	}
	if _, err := svc.ApproveGrant(bg, g.ID, ae, t0.Add(access.GrantPendingTTL-time.Second)); err != nil {
		t.Fatalf("approval just before: %v", err)
	}
}

// TestTwoPersonRule: the approver must be another identity, not merely
// another token: not the requester's parent, child, sibling, or an
// orphan its tree made; a requester whose token is gone, or an approver
// whose chain cannot be followed, is refused.
func TestTwoPersonRule(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	p, pe := mkToken(t, svc, access.TokenRequest{})
	c1, c1e := mkToken(t, svc, access.TokenRequest{ParentToken: p})
	_, c2e := mkToken(t, svc, access.TokenRequest{ParentToken: p})
	_, ge := mkToken(t, svc, access.TokenRequest{ParentToken: c1})
	_, oe := mkToken(t, svc, access.TokenRequest{Creator: pe.Accessor})
	_, ooe := mkToken(t, svc, access.TokenRequest{Creator: oe.Accessor})
	_, xe := mkToken(t, svc, access.TokenRequest{})
	rootTok, _ := mkToken(t, svc, access.TokenRequest{Policies: []string{"root"}})
	_, k1e := mkToken(t, svc, access.TokenRequest{ParentToken: rootTok})
	_, k2e := mkToken(t, svc, access.TokenRequest{ParentToken: rootTok})

	g, err := svc.RequestGrant(bg, c1e, "app", "decrypt", time.Hour, "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	// Each refusal says its own cause.
	const (
		sameToken = "the approving token is the one that requested the grant"
		sameTree  = "the approving token is the requester's identity (in the token tree"
	)
	for name, approver := range map[string]*access.TokenEntry{
		"itself": c1e, "parent": pe, "sibling": c2e, "child": ge,
		"orphan made by the parent": oe, "orphan made by that orphan": ooe,
	} {
		want := sameTree
		if name == "itself" {
			want = sameToken
		}
		if _, err := svc.ApproveGrant(bg, g.ID, approver, t0); !errors.Is(err, access.ErrTwoPerson) || !strings.Contains(err.Error(), want) {
			t.Errorf("approval by the requester's %s: %v, want %q", name, err, want)
		}
	}
	// Two tokens made by one root token are one operator.
	gk, err := svc.RequestGrant(bg, k1e, "app", "decrypt", time.Hour, "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ApproveGrant(bg, gk.ID, k2e, t0); !errors.Is(err, access.ErrTwoPerson) {
		t.Errorf("approval by a sibling under a root token: %v", err)
	}
	if got, _, _ := svc.ReadGrant(g.ID); got.State != access.GrantPending {
		t.Fatalf("refused approvals changed the grant: %+v", got)
	}
	if a, err := svc.ApproveGrant(bg, g.ID, xe, t0); err != nil || a.Approver != xe.Accessor {
		t.Fatalf("approval by another identity: %+v %v", a, err)
	}

	// The requester's token is gone.
	gx, err := svc.RequestGrant(bg, xe, "app", "sign", time.Hour, "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	gone, goneE := mkToken(t, svc, access.TokenRequest{})
	gg, err := svc.RequestGrant(bg, goneE, "app", "sign", time.Hour, "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeToken(bg, gone, false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ApproveGrant(bg, gg.ID, xe, t0); !errors.Is(err, access.ErrTwoPerson) || !strings.Contains(err.Error(), "the requester's token cannot be found") {
		t.Errorf("approval of a gone requester's grant: %v", err)
	}
	// The approver's maker was revoked with orphan: who it stands for
	// can no longer be told.
	mp, _ := mkToken(t, svc, access.TokenRequest{})
	mk, _ := mkToken(t, svc, access.TokenRequest{ParentToken: mp})
	if err := svc.RevokeToken(bg, mp, true); err != nil {
		t.Fatal(err)
	}
	orphaned := mustLive(t, svc, "orphaned", mk)
	if _, err := svc.ApproveGrant(bg, gx.ID, orphaned, t0); !errors.Is(err, access.ErrIdentityUnresolved) ||
		!strings.Contains(err.Error(), "who the approving token stands for cannot be told") {
		t.Errorf("approval by a token whose maker is gone: %v", err)
	}

	// Tokens under a token made at init (no accessor index yet) are that
	// token's identity.
	initTok, _ := access.NewToken()
	ie, _ := access.NewTokenEntry(initTok, []string{"root"}, t0)
	m.Put(access.TokenRecord(initTok), mustJSON(t, ie))
	_, i1 := mkToken(t, svc, access.TokenRequest{ParentToken: initTok})
	_, i2 := mkToken(t, svc, access.TokenRequest{ParentToken: initTok})
	gi, err := svc.RequestGrant(bg, i1, "app", "hmac", time.Hour, "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ApproveGrant(bg, gi.ID, i2, t0); !errors.Is(err, access.ErrTwoPerson) || errors.Is(err, access.ErrIdentityUnresolved) {
		t.Errorf("approval by a sibling under the init token: %v", err)
	}
	if _, err := svc.ApproveGrant(bg, gi.ID, xe, t0); err != nil {
		t.Errorf("approval of an init-token child's grant by another identity: %v", err)
	}
	// The init token itself requests (its accessor leads to no record):
	// a child of it approving is the same identity, not a gone requester.
	gr, err := svc.RequestGrant(bg, ie, "app", "hmac", time.Hour, "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ApproveGrant(bg, gr.ID, i2, t0); !errors.Is(err, access.ErrTwoPerson) || !strings.Contains(err.Error(), sameTree) {
		t.Errorf("approval of the init token's grant by its child: %v", err)
	}
}

// TestApproveGrantRace: an approval that loses the race with another
// change of the grant (another node approved it) is ErrGrantState.
func TestApproveGrantRace(t *testing.T) {
	t.Parallel()
	svc, h := newHookService(t)
	_, re := mkToken(t, svc, access.TokenRequest{})
	_, ae := mkToken(t, svc, access.TokenRequest{})
	g, err := svc.RequestGrant(bg, re, "app", "decrypt", time.Hour, "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	var once atomic.Bool
	h.setBefore(func(*store.Txn) {
		if !once.Swap(true) {
			v, _ := h.Get(fsm.RecordGrant + g.ID)
			h.Put(fsm.RecordGrant+g.ID, v)
		}
	})
	if _, err := svc.ApproveGrant(bg, g.ID, ae, t0); !errors.Is(err, access.ErrGrantState) {
		t.Fatalf("approval that lost a race: %v", err)
	}
	if a, _ := svc.ActiveGrant(re.Accessor, "app", "decrypt", t0); a != nil {
		t.Fatal("the losing approval activated the grant")
	}
}

// TestGrantIndexReplaced: a second active grant for the same token, key
// and operation takes the index; ending the first leaves the second.
func TestGrantIndexReplaced(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	_, re := mkToken(t, svc, access.TokenRequest{})
	_, ae := mkToken(t, svc, access.TokenRequest{})
	var ids []string
	for range 2 {
		g, err := svc.RequestGrant(bg, re, "app", "decrypt", time.Hour, "r", t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ApproveGrant(bg, g.ID, ae, t0); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, g.ID)
	}
	if err := svc.RevokeGrant(bg, ids[0]); err != nil {
		t.Fatal(err)
	}
	if a, err := svc.ActiveGrant(re.Accessor, "app", "decrypt", t0); err != nil || a == nil || a.ID != ids[1] {
		t.Fatalf("second grant after the first ended: %+v %v", a, err)
	}
}

// TestTidyGrants: tidy ends the grants (pending or active) that lapsed
// at now, each with its audit event and its index, and keeps the rest.
func TestTidyGrants(t *testing.T) {
	t.Parallel()
	svc, h := newHookService(t)
	_, re := mkToken(t, svc, access.TokenRequest{})
	_, ae := mkToken(t, svc, access.TokenRequest{})
	req := func(op string, ttl time.Duration, at time.Time) *access.Grant {
		g, err := svc.RequestGrant(bg, re, "app", op, ttl, "r", at)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	oldPending := req("encrypt", time.Hour, t0)
	newPending := req("sign", time.Hour, t0.Add(time.Hour))
	shortActive := req("decrypt", time.Hour, t0)
	longActive := req("hmac", 24*time.Hour, t0)
	if _, err := svc.ApproveGrant(bg, shortActive.ID, ae, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ApproveGrant(bg, longActive.ID, ae, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(access.GrantPendingTTL) // the old request lapses now
	n, err := svc.TidyGrants(bg, now)
	if err != nil || n != 2 {
		t.Fatalf("tidy: %d %v, want 2", n, err)
	}
	for _, g := range []*access.Grant{oldPending, shortActive} {
		if _, _, err := svc.ReadGrant(g.ID); !errors.Is(err, access.ErrGrantNotFound) {
			t.Errorf("lapsed grant %s (%s) kept: %v", g.ID, g.Operation, err)
		}
	}
	for _, g := range []*access.Grant{newPending, longActive} {
		if _, _, err := svc.ReadGrant(g.ID); err != nil {
			t.Errorf("live grant %s (%s): %v", g.ID, g.Operation, err)
		}
	}
	if keys, _ := h.List(fsm.RecordGrantActive); !slices.Equal(keys, []string{re.Accessor + "/app/hmac"}) {
		t.Fatalf("grant index after tidy: %v", keys)
	}
	var ended []string
	for _, ev := range h.events() {
		if ev.Operation != "sys/grants/expire" || ev.Identity != "tidy" || ev.Key != "app" {
			t.Fatalf("tidy event %+v", ev)
		}
		ended = append(ended, ev.Details["grant"])
	}
	slices.Sort(ended)
	want := []string{oldPending.ID, shortActive.ID}
	slices.Sort(want)
	if !slices.Equal(ended, want) {
		t.Fatalf("events for %v, want %v", ended, want)
	}
	if n, err := svc.TidyGrants(bg, now); err != nil || n != 0 {
		t.Fatalf("second tidy: %d %v", n, err)
	}
}

// TestDecodeGrant: a stored grant is accepted only if it keeps the
// rules.
func TestDecodeGrant(t *testing.T) {
	t.Parallel()
	good := access.Grant{ID: "a1", Key: "app", Operation: "decrypt", TTL: time.Hour, Reason: "r",
		State: access.GrantActive, Requester: "x", Approver: "y", RequestedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if _, err := access.DecodeGrant(mustJSON(t, good)); err != nil {
		t.Fatal(err)
	}
	self := good
	self.Approver = "x"
	none := good
	none.Approver = ""
	state := good
	state.State = "approved"
	for name, g := range map[string]access.Grant{"self-approved": self, "unapproved active": none, "bad state": state} {
		if _, err := access.DecodeGrant(mustJSON(t, g)); !errors.Is(err, access.ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := access.DecodeGrant([]byte("{")); !errors.Is(err, access.ErrInvalidRequest) {
		t.Errorf("bad json: %v", err)
	}
}
