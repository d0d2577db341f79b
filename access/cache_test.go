package access_test

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/store"
	"github.com/keyraft/keyraft/store/storetest"
)

// countReads makes m count its Reads (set before m is shared).
func countReads(m *storetest.Mem) *atomic.Int64 {
	var n atomic.Int64
	m.OnRead = func() { n.Add(1) }
	return &n
}

// TestAuthenticateCaches: a token is read once, then answered from the
// cache while nothing changes.
func TestAuthenticateCaches(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	reads := countReads(m)
	tok, e := mkToken(t, svc, access.TokenRequest{Policies: []string{"default", "app"}})
	got, err := svc.Authenticate(tok)
	if err != nil || got.Accessor != e.Accessor || !slices.Equal(got.Policies, e.Policies) {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	if svc.CachedTokens() != 1 {
		t.Fatalf("%d cached, want 1", svc.CachedTokens())
	}
	n := reads.Load()
	for range 10 {
		if _, err := svc.Authenticate(tok); err != nil {
			t.Fatal(err)
		}
	}
	if reads.Load() != n {
		t.Fatalf("%d reads for cached lookups", reads.Load()-n)
	}
	// The answer is the caller's to change: the cache is not.
	got.Policies[0] = "root"
	got.Accessor = "forged"
	again, _ := svc.Authenticate(tok)
	if again.Policies[0] != "default" || again.Accessor != e.Accessor {
		t.Fatalf("a caller's change reached the cache: %+v", again)
	}
	for _, tk := range []string{"", "kr.nope"} {
		if _, err := svc.Authenticate(tk); !errors.Is(err, access.ErrPermissionDenied) {
			t.Fatalf("authenticate %q: %v", tk, err)
		}
	}
	if svc.CachedTokens() != 1 {
		t.Fatalf("unknown tokens cached: %d entries", svc.CachedTokens())
	}
}

// TestAuthenticateCopiesMeta: the entry Authenticate returns is the
// caller's to change, its metadata and bound CIDRs included.
func TestAuthenticateCopiesMeta(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	tok, _ := mkToken(t, svc, access.TokenRequest{Meta: map[string]string{"k": "v"}, BoundCIDRs: []string{"10.0.0.0/8"}})
	got, err := svc.Authenticate(tok)
	if err != nil {
		t.Fatal(err)
	}
	got.Meta["k"] = "changed"
	got.BoundCIDRs[0] = "0.0.0.0/0"
	again, _ := svc.Authenticate(tok)
	if again.Meta["k"] != "v" || again.BoundCIDRs[0] != "10.0.0.0/8" {
		t.Fatalf("a caller's change reached the cache: meta %v cidrs %v", again.Meta, again.BoundCIDRs)
	}
}

// TestAuthenticateAfterRevoke: a revoked token is refused at once, even
// though its entry was cached, whether the revocation was by token, by
// accessor, of its parent, of its last use, or by another Service (node)
// over the same store.
func TestAuthenticateAfterRevoke(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	other, err := access.New(access.Config{Store: m})
	if err != nil {
		t.Fatal(err)
	}
	byToken, _ := mkToken(t, svc, access.TokenRequest{})
	byAcc, be := mkToken(t, svc, access.TokenRequest{})
	parent, _ := mkToken(t, svc, access.TokenRequest{})
	kid, _ := mkToken(t, svc, access.TokenRequest{ParentToken: parent})
	once, _ := mkToken(t, svc, access.TokenRequest{NumUses: 1})
	elsewhere, _ := mkToken(t, svc, access.TokenRequest{})
	all := []string{byToken, byAcc, parent, kid, once, elsewhere}
	for _, tk := range all {
		if _, err := svc.Authenticate(tk); err != nil {
			t.Fatal(err)
		}
	}
	if svc.CachedTokens() != len(all) {
		t.Fatalf("%d cached", svc.CachedTokens())
	}
	if err := svc.RevokeToken(bg, byToken, false); err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeAccessor(bg, be.Accessor, false); err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeToken(bg, parent, false); err != nil {
		t.Fatal(err)
	}
	if err := svc.UseToken(bg, once); err != nil {
		t.Fatal(err)
	}
	if err := other.RevokeToken(bg, elsewhere, false); err != nil {
		t.Fatal(err)
	}
	for _, tk := range all {
		if e, err := svc.Authenticate(tk); !errors.Is(err, access.ErrPermissionDenied) {
			t.Fatalf("revoked token authenticated: %+v %v", e, err)
		}
	}
	if svc.CachedTokens() != 0 {
		t.Fatalf("%d revoked entries still cached", svc.CachedTokens())
	}
}

// TestAuthenticateSeesChanges: a renewal, a spent use and a
// revoke-orphan are seen by the next Authenticate.
func TestAuthenticateSeesChanges(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	tok, _ := mkToken(t, svc, access.TokenRequest{TTL: time.Hour, Renewable: true, NumUses: 5})
	kid, _ := mkToken(t, svc, access.TokenRequest{ParentToken: tok})
	for _, tk := range []string{tok, kid} {
		if _, err := svc.Authenticate(tk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.RenewToken(bg, tok, 2*time.Hour, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := svc.UseToken(bg, tok); err != nil {
		t.Fatal(err)
	}
	e, err := svc.Authenticate(tok)
	if err != nil || !e.ExpireTime.Equal(t0.Add(time.Minute+2*time.Hour)) || e.NumUses != 4 {
		t.Fatalf("after renew and use: %+v %v", e, err)
	}
	if err := svc.RevokeToken(bg, tok, true); err != nil {
		t.Fatal(err)
	}
	if k, err := svc.Authenticate(kid); err != nil || !k.Orphan() {
		t.Fatalf("child after revoke-orphan: %+v %v", k, err)
	}
}

// TestAuthenticateConcurrentRevoke: once RevokeToken returns, no
// Authenticate succeeds, however many ran concurrently before.
func TestAuthenticateConcurrentRevoke(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	tok, _ := mkToken(t, svc, access.TokenRequest{})
	var revoked atomic.Bool
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				after := revoked.Load()
				_, err := svc.Authenticate(tok)
				if after && err == nil {
					t.Error("authenticated after the revocation returned")
					return
				}
				if err != nil && !errors.Is(err, access.ErrPermissionDenied) {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 50 {
		if _, err := svc.Authenticate(tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.RevokeToken(bg, tok, false); err != nil {
		t.Fatal(err)
	}
	revoked.Store(true)
	for range 50 {
		if _, err := svc.Authenticate(tok); !errors.Is(err, access.ErrPermissionDenied) {
			t.Fatalf("after revoke: %v", err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestPurgeSealed: Purge (the node seals) drops every cached entry and
// policy, so a sealed store's ErrSealed is what Authenticate answers.
func TestPurgeSealed(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	tok, _ := mkToken(t, svc, access.TokenRequest{Policies: []string{"app"}})
	if err := svc.PutPolicy(bg, "app", `path "transit/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(tok); err != nil {
		t.Fatal(err)
	}
	if ps, err := svc.Policies("", []string{"app"}); err != nil || len(ps) != 1 {
		t.Fatalf("policies: %v %v", ps, err)
	}
	m.SetSealed(true)
	svc.Purge()
	if svc.CachedTokens() != 0 {
		t.Fatalf("%d entries cached after Purge", svc.CachedTokens())
	}
	if _, err := svc.Authenticate(tok); !errors.Is(err, store.ErrSealed) {
		t.Fatalf("authenticate sealed: %v", err)
	}
	if _, err := svc.Policies("", []string{"app"}); !errors.Is(err, store.ErrSealed) {
		t.Fatalf("policies sealed: %v", err)
	}
	m.SetSealed(false)
	if _, err := svc.Authenticate(tok); err != nil {
		t.Fatalf("authenticate after unseal: %v", err)
	}
}
