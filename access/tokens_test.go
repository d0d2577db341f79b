package access_test

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
	"github.com/keyraft/keyraft/store/storetest"
)

func TestNewRequiresStore(t *testing.T) {
	t.Parallel()
	if _, err := access.New(access.Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}

func TestNewTokenAndID(t *testing.T) {
	t.Parallel()
	a, err := access.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := access.NewToken()
	if a == b || !strings.HasPrefix(a, "kr.") || len(a) != access.TokenLen {
		t.Fatalf("tokens %q %q (len %d, want %d)", a, b, len(a), access.TokenLen)
	}
	id, err := access.NewID()
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Split(id, "-"); len(p) != 5 || len(p[0]) != 8 || len(p[1]) != 4 || len(p[2]) != 4 || len(p[3]) != 4 || len(p[4]) != 12 {
		t.Fatalf("id %q is not in the UUID layout", id)
	}
}

// TestCreateTokenDefaults: a non-root token without a TTL lives the
// default TTL and is capped at the system maximum; policies are
// deduplicated; the entry is stored under the token's hash (never the
// token) and found by token and by accessor.
func TestCreateTokenDefaults(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	local := t0.In(time.FixedZone("X", 5*3600))
	tok, e := mkToken(t, svc, access.TokenRequest{
		Policies: []string{"default", "app", "", "app"}, DisplayName: "token-x",
		Meta: map[string]string{"k": "v"}, Renewable: true, Now: local,
	})
	if !slices.Equal(e.Policies, []string{"default", "app"}) {
		t.Fatalf("policies %v", e.Policies)
	}
	if e.TTL != access.DefaultTokenTTL || !e.ExpireTime.Equal(t0.Add(access.DefaultTokenTTL)) ||
		!e.MaxExpireTime.Equal(t0.Add(access.MaxTokenTTL)) || !e.Renewable {
		t.Fatalf("lifetime: ttl %s expire %s max %s renewable %v", e.TTL, e.ExpireTime, e.MaxExpireTime, e.Renewable)
	}
	if e.CreationTime.Location() != time.UTC || !e.CreationTime.Equal(t0) {
		t.Fatalf("creation time %s, want %s in UTC", e.CreationTime, t0)
	}
	if e.Path != "auth/token/create" || !e.Orphan() || e.Accessor == "" || e.DisplayName != "token-x" || e.Meta["k"] != "v" {
		t.Fatalf("entry %+v", e)
	}
	raw, rev := m.Get(access.TokenRecord(tok))
	if rev == 0 {
		t.Fatal("no record at TokenRecord(token)")
	}
	if strings.Contains(string(raw), tok) || strings.Contains(access.TokenRecord(tok), tok) {
		t.Fatal("the token itself is stored")
	}
	got := mustLive(t, svc, "lookup", tok)
	if got.Accessor != e.Accessor || !got.ExpireTime.Equal(e.ExpireTime) || !slices.Equal(got.Policies, e.Policies) {
		t.Fatalf("lookup %+v, created %+v", got, e)
	}
	byAcc, err := svc.LookupAccessor(e.Accessor)
	if err != nil || byAcc.Accessor != e.Accessor {
		t.Fatalf("lookup-accessor: %+v %v", byAcc, err)
	}
	if _, err := svc.LookupToken(""); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("empty token: %v", err)
	}
	if _, err := svc.LookupToken("kr.nope"); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("unknown token: %v", err)
	}
	for _, acc := range []string{"", "a/b", strings.Repeat("a", 129), "nope"} {
		if _, err := svc.LookupAccessor(acc); !errors.Is(err, access.ErrPermissionDenied) {
			t.Fatalf("accessor %q: %v", acc, err)
		}
	}
}

// TestCreateTokenRootPolicy: a root-policy token without a TTL never
// expires and is not renewable; with a TTL it expires like any other.
func TestCreateTokenRootPolicy(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	_, e := mkToken(t, svc, access.TokenRequest{Policies: []string{"root"}, Renewable: true})
	if !e.ExpireTime.IsZero() || !e.MaxExpireTime.IsZero() || e.TTL != 0 || e.Renewable {
		t.Fatalf("root token without ttl: %+v", e)
	}
	if e.Expired(t0.Add(100 * 365 * 24 * time.Hour)) {
		t.Fatal("root token expired")
	}
	_, e = mkToken(t, svc, access.TokenRequest{Policies: []string{"root"}, TTL: time.Hour})
	if !e.ExpireTime.Equal(t0.Add(time.Hour)) || !e.Expired(t0.Add(time.Hour)) {
		t.Fatalf("root token with ttl: %+v", e)
	}
}

func TestCreateTokenInvalid(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	for _, req := range []access.TokenRequest{
		{TTL: -time.Second},
		{ExplicitMaxTTL: -time.Second},
		{NumUses: -1},
		{Namespace: "nowhere"},
	} {
		req.Now = t0
		if _, _, err := svc.CreateToken(bg, req); !errors.Is(err, access.ErrInvalidRequest) {
			t.Errorf("%+v: %v, want ErrInvalidRequest", req, err)
		}
	}
	if _, _, err := svc.CreateToken(bg, access.TokenRequest{ParentToken: "kr.gone", Now: t0}); !errors.Is(err, access.ErrPermissionDenied) {
		t.Errorf("unknown parent: %v", err)
	}
	if m.Index() != 0 {
		t.Fatalf("refused creations committed %d entries", m.Index())
	}
}

// TestChildNeverOutlivesParent: a child's expiry, and every renewal's, is
// capped by its parent's expiry as it is then (a child lives as long as
// both are renewed, as in Vault); it is indexed under its parent.
func TestChildNeverOutlivesParent(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	parent, pe := mkToken(t, svc, access.TokenRequest{TTL: time.Hour, Renewable: true})
	_, ce := mkToken(t, svc, access.TokenRequest{ParentToken: parent, TTL: 5 * time.Hour, Renewable: true})
	if ce.Parent != pe.Accessor || ce.Orphan() {
		t.Fatalf("child parent %q, want %q", ce.Parent, pe.Accessor)
	}
	if !ce.ExpireTime.Equal(pe.ExpireTime) {
		t.Fatalf("child expires %s, parent %s", ce.ExpireTime, pe.ExpireTime)
	}
	at := t0.Add(30 * time.Minute)
	if e, err := svc.RenewAccessor(bg, ce.Accessor, 4*time.Hour, at); err != nil || !e.ExpireTime.Equal(pe.ExpireTime) {
		t.Fatalf("child renewal past its parent: %v, %v; want the parent's expiry %s", e, err, pe.ExpireTime)
	}
	if _, err := svc.RenewToken(bg, parent, 3*time.Hour, at); err != nil {
		t.Fatal(err)
	}
	if e, err := svc.RenewAccessor(bg, ce.Accessor, 2*time.Hour, at); err != nil || !e.ExpireTime.Equal(at.Add(2*time.Hour)) {
		t.Fatalf("child renewal after the parent's: %v, %v; want %s", e, err, at.Add(2*time.Hour))
	}
	if _, rev := m.Get(fsm.RecordTokenChildren + pe.Accessor + "/" + ce.Accessor); rev == 0 {
		t.Fatal("no children index entry")
	}
	// A shorter child keeps its own TTL.
	_, se := mkToken(t, svc, access.TokenRequest{ParentToken: parent, TTL: time.Minute})
	if !se.ExpireTime.Equal(t0.Add(time.Minute)) {
		t.Fatalf("short child expires %s", se.ExpireTime)
	}
	// A child of a root token (no expiry) with root policy has none either.
	root, _ := mkToken(t, svc, access.TokenRequest{Policies: []string{"root"}})
	_, rce := mkToken(t, svc, access.TokenRequest{Policies: []string{"root"}, ParentToken: root})
	if !rce.ExpireTime.IsZero() {
		t.Fatalf("child of root expires %s", rce.ExpireTime)
	}
	// The creator is recorded only for an orphan.
	_, oe := mkToken(t, svc, access.TokenRequest{Creator: pe.Accessor})
	_, ke := mkToken(t, svc, access.TokenRequest{ParentToken: parent, Creator: "ignored"})
	if oe.CreatedBy != pe.Accessor || ke.CreatedBy != "" {
		t.Fatalf("created_by: orphan %q, child %q", oe.CreatedBy, ke.CreatedBy)
	}
}

// TestCreateTokenRetriesConflict: a parent changed between the read and
// the commit (a use spent elsewhere) makes the commit conflict; the
// creation reads again and succeeds.
func TestCreateTokenRetriesConflict(t *testing.T) {
	t.Parallel()
	svc, h := newHookService(t)
	parent, _ := mkToken(t, svc, access.TokenRequest{NumUses: 10})
	key := access.TokenRecord(parent)
	var bumped atomic.Int32
	h.setBefore(func(*store.Txn) {
		if bumped.Add(1) <= 2 { // two lost races
			v, _ := h.Get(key)
			h.Put(key, v)
		}
	})
	_, ce, err := svc.CreateToken(bg, access.TokenRequest{Policies: []string{"default"}, ParentToken: parent, Now: t0})
	if err != nil {
		t.Fatalf("create after conflicts: %v", err)
	}
	if bumped.Load() != 3 {
		t.Fatalf("%d commit attempts, want 3", bumped.Load())
	}
	if _, err := svc.LookupAccessor(ce.Accessor); err != nil {
		t.Fatal(err)
	}
}

// TestExplicitMaxTTLCapsCreation: explicit_max_ttl bounds the token's
// life from the start, not only its renewals (as in Vault). (Found
// failing by this suite; fixed in 057adca.)
func TestExplicitMaxTTLCapsCreation(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	for _, req := range []access.TokenRequest{
		{ExplicitMaxTTL: time.Hour},
		{ExplicitMaxTTL: time.Hour, TTL: 2 * time.Hour},
	} {
		_, e := mkToken(t, svc, req)
		if !e.MaxExpireTime.Equal(t0.Add(time.Hour)) {
			t.Fatalf("%+v: max expire %s", req, e.MaxExpireTime)
		}
		if e.ExpireTime.After(e.MaxExpireTime) || !e.Expired(t0.Add(time.Hour)) {
			t.Errorf("ttl %s explicit_max_ttl 1h: expires %s, past its maximum %s", req.TTL, e.ExpireTime, e.MaxExpireTime)
		}
	}
}

// TestRenewToken: a renewal extends a renewable token to now + increment
// (its TTL without one), never past its maximum; a token without expiry
// is answered as is; expired, unknown and non-renewable tokens are
// refused.
func TestRenewToken(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	tok, e := mkToken(t, svc, access.TokenRequest{TTL: time.Hour, ExplicitMaxTTL: 3 * time.Hour, Renewable: true})
	if !e.MaxExpireTime.Equal(t0.Add(3 * time.Hour)) {
		t.Fatalf("max expire %s", e.MaxExpireTime)
	}
	r, err := svc.RenewToken(bg, tok, 0, t0.Add(30*time.Minute))
	if err != nil || !r.ExpireTime.Equal(t0.Add(90*time.Minute)) {
		t.Fatalf("renew with the ttl: %v %v", r, err)
	}
	if got := mustLive(t, svc, "after renew", tok); !got.ExpireTime.Equal(t0.Add(90 * time.Minute)) {
		t.Fatalf("stored expiry %s", got.ExpireTime)
	}
	r, err = svc.RenewToken(bg, tok, 2*time.Hour, t0.Add(time.Hour))
	if err != nil || !r.ExpireTime.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("renew with an increment: %v %v", r, err)
	}
	r, err = svc.RenewAccessor(bg, e.Accessor, 24*time.Hour, t0.Add(2*time.Hour))
	if err != nil || !r.ExpireTime.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("renew past the maximum: %v %v", r, err)
	}
	if _, err := svc.RenewToken(bg, tok, -time.Second, t0); !errors.Is(err, access.ErrInvalidRequest) {
		t.Fatalf("negative increment: %v", err)
	}
	if _, err := svc.RenewToken(bg, tok, 0, t0.Add(3*time.Hour)); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("renew at expiry: %v", err)
	}

	fixed, _ := mkToken(t, svc, access.TokenRequest{TTL: time.Hour, Renewable: false})
	root, _ := mkToken(t, svc, access.TokenRequest{Policies: []string{"root"}})
	before := m.Index()
	if _, err := svc.RenewToken(bg, fixed, 0, t0); !errors.Is(err, access.ErrInvalidRequest) {
		t.Fatalf("renewable=false: %v", err)
	}
	if got := mustLive(t, svc, "non-renewable", fixed); !got.ExpireTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("non-renewable token's expiry moved to %s", got.ExpireTime)
	}

	if r, err := svc.RenewToken(bg, root, time.Hour, t0); err != nil || !r.ExpireTime.IsZero() {
		t.Fatalf("renew of a token without expiry: %+v %v", r, err)
	}
	if m.Index() != before {
		t.Fatalf("refused or empty renewals committed %d entries", m.Index()-before)
	}
	for _, tk := range []string{"", "kr.nope"} {
		if _, err := svc.RenewToken(bg, tk, 0, t0); !errors.Is(err, access.ErrPermissionDenied) {
			t.Fatalf("renew %q: %v", tk, err)
		}
	}
	if _, err := svc.RenewAccessor(bg, "nope", 0, t0); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("renew unknown accessor: %v", err)
	}
}

// TestRenewRegrantsLastIncrement: the increment is the new TTL counted
// from now (a smaller one shortens the token's life); a renewal without
// one grants again what the last renewal granted (the creation TTL before
// any), as in Vault.
func TestRenewRegrantsLastIncrement(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	tok, _ := mkToken(t, svc, access.TokenRequest{TTL: time.Hour, Renewable: true})
	for _, c := range []struct {
		at, increment, want time.Duration // from t0
	}{
		{10 * time.Minute, 4 * time.Hour, 10*time.Minute + 4*time.Hour},
		{time.Hour, 0, 5 * time.Hour},
		{2 * time.Hour, 30 * time.Minute, 2*time.Hour + 30*time.Minute},
		{2*time.Hour + 10*time.Minute, 0, 2*time.Hour + 40*time.Minute},
	} {
		e, err := svc.RenewToken(bg, tok, c.increment, t0.Add(c.at))
		if err != nil {
			t.Fatal(err)
		}
		stored := mustLive(t, svc, "renewed", tok)
		if !e.ExpireTime.Equal(t0.Add(c.want)) || !stored.ExpireTime.Equal(t0.Add(c.want)) || !stored.LastRenewal.Equal(t0.Add(c.at)) {
			t.Fatalf("renew at +%s by %s: expires %s (stored %s, last renewal %s), want +%s",
				c.at, c.increment, e.ExpireTime.Sub(t0), stored.ExpireTime.Sub(t0), stored.LastRenewal, c.want)
		}
	}
}

// TestPeriodicToken: a periodic token lives its period, and every
// renewal sets its life back to the period whatever the increment, with
// no cap but its explicit maximum.
func TestPeriodicToken(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	tok, e := mkToken(t, svc, access.TokenRequest{Period: time.Hour, TTL: 5 * time.Hour, Renewable: true})
	if e.Period != time.Hour || e.TTL != time.Hour || !e.ExpireTime.Equal(t0.Add(time.Hour)) || !e.MaxExpireTime.IsZero() {
		t.Fatalf("periodic token %+v", e)
	}
	for _, inc := range []time.Duration{0, 10 * time.Hour, time.Minute} {
		at := t0.Add(50 * time.Minute)
		r, err := svc.RenewToken(bg, tok, inc, at)
		if err != nil || !r.ExpireTime.Equal(at.Add(time.Hour)) {
			t.Fatalf("renew by %s: %+v %v", inc, r, err)
		}
	}
	capped, ce := mkToken(t, svc, access.TokenRequest{Period: time.Hour, ExplicitMaxTTL: 90 * time.Minute, Renewable: true})
	if !ce.MaxExpireTime.Equal(t0.Add(90 * time.Minute)) {
		t.Fatalf("periodic token with a maximum: %+v", ce)
	}
	if r, err := svc.RenewToken(bg, capped, 0, t0.Add(time.Minute*59)); err != nil || !r.ExpireTime.Equal(t0.Add(90*time.Minute)) {
		t.Fatalf("renew past the explicit maximum: %+v %v", r, err)
	}
	_, long := mkToken(t, svc, access.TokenRequest{Period: 2 * access.MaxTokenTTL})
	if long.Period != access.MaxTokenTTL {
		t.Fatalf("period %s, want at most %s", long.Period, access.MaxTokenTTL)
	}
}

// TestTokenExpiry: a token works until, not at, its expire time.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	e := &access.TokenEntry{ExpireTime: t0}
	if e.Expired(t0.Add(-time.Nanosecond)) || !e.Expired(t0) || !e.Expired(t0.Add(time.Hour)) {
		t.Fatal("expiry boundary")
	}
	if (&access.TokenEntry{}).Expired(t0) {
		t.Fatal("no expire time expired")
	}
}

func TestAllowsAddr(t *testing.T) {
	t.Parallel()
	free := &access.TokenEntry{}
	bound := &access.TokenEntry{BoundCIDRs: []string{"10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "garbage"}}
	for _, c := range []struct {
		e    *access.TokenEntry
		ip   string
		want bool
	}{
		{free, "203.0.113.1", true},
		{bound, "10.1.2.3", true},
		{bound, "::ffff:10.1.2.3", true},
		{bound, "192.168.1.7", true},
		{bound, "192.168.1.8", false},
		{bound, "2001:db8::1", true},
		{bound, "2001:db9::1", false},
		{bound, "11.0.0.1", false},
	} {
		if got := c.e.AllowsAddr(net.ParseIP(c.ip)); got != c.want {
			t.Errorf("%v allows %s: %v, want %v", c.e.BoundCIDRs, c.ip, got, c.want)
		}
	}
	if bound.AllowsAddr(nil) {
		t.Error("a bound token allows a request without an address")
	}
}

// TestUseToken: each use of a num_uses token is spent through a commit;
// the last one revokes it (with its children); a token without a limit
// costs nothing.
func TestUseToken(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	tok, e := mkToken(t, svc, access.TokenRequest{NumUses: 3})
	child, _ := mkToken(t, svc, access.TokenRequest{ParentToken: tok})
	for left := 2; left >= 1; left-- {
		if err := svc.UseToken(bg, tok); err != nil {
			t.Fatal(err)
		}
		if got := mustLive(t, svc, "after a use", tok); got.NumUses != left {
			t.Fatalf("uses left %d, want %d", got.NumUses, left)
		}
	}
	if err := svc.UseToken(bg, tok); err != nil {
		t.Fatalf("last use: %v", err)
	}
	mustGone(t, svc, "after the last use", tok)
	mustGone(t, svc, "child after the parent's last use", child)
	if _, err := svc.LookupAccessor(e.Accessor); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("accessor after the last use: %v", err)
	}
	if err := svc.UseToken(bg, tok); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("use after the last: %v", err)
	}

	free, _ := mkToken(t, svc, access.TokenRequest{})
	before := m.Index()
	for range 5 {
		if err := svc.UseToken(bg, free); err != nil {
			t.Fatal(err)
		}
	}
	if m.Index() != before {
		t.Fatalf("uses of an unlimited token committed %d entries", m.Index()-before)
	}
	if err := svc.UseToken(bg, ""); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("use of no token: %v", err)
	}
}

// TestUseTokenConcurrent: uses spent concurrently (as by several nodes)
// are spent exactly num_uses times: each spend is a conditional commit.
func TestUseTokenConcurrent(t *testing.T) {
	t.Parallel()
	m := storetest.New()
	// Several Services over one store: the nodes of a cluster.
	var svcs []*access.Service
	for range 3 {
		s, err := access.New(access.Config{Store: m})
		if err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, s)
	}
	const uses = 40
	tok, _ := mkToken(t, svcs[0], access.TokenRequest{NumUses: uses})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 9 {
		wg.Add(1)
		go func(svc *access.Service) {
			defer wg.Done()
			for {
				switch err := svc.UseToken(bg, tok); {
				case err == nil:
					if ok.Add(1) > uses {
						t.Error("more uses spent than num_uses")
						return
					}
				case errors.Is(err, access.ErrPermissionDenied):
					return
				case errors.Is(err, store.ErrConflict):
					// out of retries: a caller answers an error; try again
				default:
					t.Error(err)
					return
				}
			}
		}(svcs[i%len(svcs)])
	}
	wg.Wait()
	if ok.Load() != uses {
		t.Fatalf("%d uses spent, want exactly %d", ok.Load(), uses)
	}
	mustGone(t, svcs[1], "used-up token", tok)
}

// TestRevokeTree: revoking a token revokes every token made under it,
// with their accessor and children indexes; revoke-orphan keeps the
// children as orphans, each still its revoked maker's identity.
func TestRevokeTree(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	root, re := mkToken(t, svc, access.TokenRequest{})
	a, ae := mkToken(t, svc, access.TokenRequest{ParentToken: root})
	b, be := mkToken(t, svc, access.TokenRequest{ParentToken: a})
	c, ce := mkToken(t, svc, access.TokenRequest{ParentToken: root})
	d, de := mkToken(t, svc, access.TokenRequest{ParentToken: c})
	e, _ := mkToken(t, svc, access.TokenRequest{ParentToken: d})
	other, _ := mkToken(t, svc, access.TokenRequest{})

	if err := svc.RevokeToken(bg, c, true); err != nil {
		t.Fatal(err)
	}
	mustGone(t, svc, "revoked with orphan", c)
	if _, err := svc.LookupAccessor(ce.Accessor); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("revoked token's accessor index: %v", err)
	}
	dGot := mustLive(t, svc, "child after revoke-orphan", d)
	if !dGot.Orphan() || dGot.CreatedBy != ce.Accessor {
		t.Fatalf("child after revoke-orphan: parent %q created_by %q", dGot.Parent, dGot.CreatedBy)
	}
	if eGot := mustLive(t, svc, "grandchild after revoke-orphan", e); eGot.Parent != de.Accessor {
		t.Fatalf("grandchild's parent %q, want %q", eGot.Parent, de.Accessor)
	}
	if kids, _ := m.List(fsm.RecordTokenChildren + ce.Accessor + "/"); len(kids) != 0 {
		t.Fatalf("children index of the revoked token left: %v", kids)
	}
	if kids, _ := m.List(fsm.RecordTokenChildren + re.Accessor + "/"); !slices.Equal(kids, []string{ae.Accessor}) {
		t.Fatalf("children of root after c's revocation: %v", kids)
	}

	if err := svc.RevokeToken(bg, root, false); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"root": root, "a": a, "b": b} {
		mustGone(t, svc, name, tok)
	}
	for _, acc := range []string{re.Accessor, ae.Accessor, be.Accessor} {
		if _, err := svc.LookupAccessor(acc); !errors.Is(err, access.ErrPermissionDenied) {
			t.Fatalf("accessor %s of the revoked tree: %v", acc, err)
		}
	}
	mustLive(t, svc, "orphan of the old tree", d)
	mustLive(t, svc, "orphan's child", e)
	mustLive(t, svc, "unrelated", other)
	if kids, _ := m.List(fsm.RecordTokenChildren); !slices.Equal(kids, []string{de.Accessor + "/" + mustLive(t, svc, "e", e).Accessor}) {
		t.Fatalf("children index: %v", kids)
	}
	if err := svc.RevokeToken(bg, root, false); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("second revocation: %v", err)
	}
	if err := svc.RevokeToken(bg, "", false); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("revoke of no token: %v", err)
	}
}

// TestRevokeOrphanByRootKeepsNoCreator: the children of a root-policy
// token revoked with orphan become orphans of nobody's identity.
func TestRevokeOrphanByRootKeepsNoCreator(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	root, _ := mkToken(t, svc, access.TokenRequest{Policies: []string{"root"}})
	kid, _ := mkToken(t, svc, access.TokenRequest{ParentToken: root})
	if err := svc.RevokeToken(bg, root, true); err != nil {
		t.Fatal(err)
	}
	if e := mustLive(t, svc, "child", kid); !e.Orphan() || e.CreatedBy != "" {
		t.Fatalf("child of a revoked root token: parent %q created_by %q", e.Parent, e.CreatedBy)
	}
}

// TestRevokeAccessor: revocation by accessor, with and without orphan.
func TestRevokeAccessor(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	p, pe := mkToken(t, svc, access.TokenRequest{})
	k, _ := mkToken(t, svc, access.TokenRequest{ParentToken: p})
	if err := svc.RevokeAccessor(bg, pe.Accessor, true); err != nil {
		t.Fatal(err)
	}
	mustGone(t, svc, "revoked by accessor", p)
	if e := mustLive(t, svc, "orphaned child", k); !e.Orphan() {
		t.Fatal("child still has a parent")
	}

	p2, pe2 := mkToken(t, svc, access.TokenRequest{})
	k2, _ := mkToken(t, svc, access.TokenRequest{ParentToken: p2})
	if err := svc.RevokeAccessor(bg, pe2.Accessor, false); err != nil {
		t.Fatal(err)
	}
	mustGone(t, svc, "revoked by accessor", p2)
	mustGone(t, svc, "child of a token revoked by accessor", k2)
	for _, acc := range []string{pe2.Accessor, "", "x/y", "nope"} {
		if err := svc.RevokeAccessor(bg, acc, false); !errors.Is(err, access.ErrPermissionDenied) {
			t.Fatalf("revoke accessor %q: %v", acc, err)
		}
	}
}

// TestTidyTokens: tidy revokes the tokens expired at now (with their
// children), keeps the others, and adds the accessor index a token made
// at init lacks; each revocation commits with its audit event.
func TestTidyTokens(t *testing.T) {
	t.Parallel()
	svc, h := newHookService(t)
	var expired []string
	var expiredAcc []string
	for _, ttl := range []time.Duration{time.Minute, time.Hour, 2 * time.Hour} {
		tok, e := mkToken(t, svc, access.TokenRequest{TTL: ttl})
		expired = append(expired, tok)
		expiredAcc = append(expiredAcc, e.Accessor)
	}
	live, le := mkToken(t, svc, access.TokenRequest{TTL: 2*time.Hour + time.Second})
	// A short child of a live parent expires on its own.
	kid, ke := mkToken(t, svc, access.TokenRequest{ParentToken: live, TTL: time.Minute})
	expired, expiredAcc = append(expired, kid), append(expiredAcc, ke.Accessor)
	rootTok, _ := mkToken(t, svc, access.TokenRequest{Policies: []string{"root"}})

	// A token as init writes it: its entry, without an accessor index.
	initTok, _ := access.NewToken()
	ie, _ := access.NewTokenEntry(initTok, []string{"root"}, t0)
	h.Put(access.TokenRecord(initTok), mustJSON(t, ie))
	if _, err := svc.LookupAccessor(ie.Accessor); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("init token has an accessor index before tidy: %v", err)
	}

	now := t0.Add(2 * time.Hour) // exactly the expiry of the third
	n, err := svc.TidyTokens(bg, now)
	if err != nil || n != 4 {
		t.Fatalf("tidy: %d revoked, %v; want 4", n, err)
	}
	for i, tok := range expired {
		mustGone(t, svc, "expired token "+expiredAcc[i], tok)
	}
	mustLive(t, svc, "live parent", live)
	mustLive(t, svc, "root", rootTok)
	mustLive(t, svc, "init token", initTok)
	if e, err := svc.LookupAccessor(ie.Accessor); err != nil || e.Accessor != ie.Accessor {
		t.Fatalf("init token's accessor after tidy: %v", err)
	}
	var got []string
	for _, ev := range h.events() {
		if ev.Operation != "auth/token/expire" || ev.Identity != "tidy" || ev.Node != "test-node" || !ev.Time.Equal(now) {
			t.Fatalf("tidy event %+v", ev)
		}
		got = append(got, ev.Details["accessor"])
	}
	slices.Sort(got)
	slices.Sort(expiredAcc)
	if !slices.Equal(got, expiredAcc) {
		t.Fatalf("tidy events for %v, want %v", got, expiredAcc)
	}
	// A second pass has nothing to do.
	if n, err := svc.TidyTokens(bg, now); err != nil || n != 0 {
		t.Fatalf("second tidy: %d %v", n, err)
	}
	list, err := svc.ListTokens()
	if err != nil || len(list) != 3 {
		t.Fatalf("tokens after tidy: %d %v", len(list), err)
	}
	if !slices.ContainsFunc(list, func(e *access.TokenEntry) bool { return e.Accessor == le.Accessor }) {
		t.Fatal("ListTokens lacks the live token")
	}
}

// TestTidyTokensCountsSubtree: tidy reports every token it revoked,
// including the children revoked with an expired parent.
func TestTidyTokensCountsSubtree(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	parent, _ := mkToken(t, svc, access.TokenRequest{TTL: time.Hour})
	// A child whose record sorts after its parent's: the pass meets the
	// parent first.
	for {
		kid, _ := mkToken(t, svc, access.TokenRequest{ParentToken: parent})
		if access.TokenRecord(kid) > access.TokenRecord(parent) {
			break
		}
		if err := svc.RevokeToken(bg, kid, false); err != nil {
			t.Fatal(err)
		}
	}
	n, err := svc.TidyTokens(bg, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := svc.ListTokens(); len(list) != 0 {
		t.Fatalf("%d tokens left", len(list))
	}
	if n != 2 {
		t.Fatalf("tidy revoked 2 tokens and reports %d", n)
	}
}

// TestPeriodicChildOfPeriodicParent: a service's periodic token makes
// periodic children that live as long as both are renewed.
func TestPeriodicChildOfPeriodicParent(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	parent, _ := mkToken(t, svc, access.TokenRequest{Period: time.Hour, Renewable: true})
	child, _ := mkToken(t, svc, access.TokenRequest{ParentToken: parent, Period: time.Hour, Renewable: true})
	for _, at := range []time.Duration{50 * time.Minute, 100 * time.Minute, 150 * time.Minute} {
		now := t0.Add(at)
		if _, err := svc.RenewToken(bg, parent, 0, now); err != nil {
			t.Fatalf("parent renewal at +%v: %v", at, err)
		}
		e, err := svc.RenewToken(bg, child, 0, now)
		if err != nil || !e.ExpireTime.Equal(now.Add(time.Hour)) {
			t.Fatalf("child renewal at +%v: %v, %v; want a period from now", at, e, err)
		}
	}
}
