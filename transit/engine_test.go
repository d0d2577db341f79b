package transit

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/keyraft/keyraft/keys"
	"github.com/keyraft/keyraft/store"
	"github.com/keyraft/keyraft/store/storetest"
)

// memStore is the in-memory Store of the engine's tests.
type memStore = storetest.Mem

func newMemStore() *memStore { return storetest.New() }

func fields(t *testing.T, body string) *Fields { return mustFields(t, body) }

func (e *Engine) cached(name string) *loaded {
	l, _ := e.cache.Peek(name)
	return l
}

// A key read while the node seals is not kept: Purge must leave no
// material in memory, even for a load that was in flight.
func TestLoadDuringPurgeKeepsNothing(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	e := New(st, nil)
	if _, err := e.CreateKey(ctx, "k", fields(t, `{}`)); err != nil {
		t.Fatal(err)
	}
	e.Purge()
	st.OnRead = func() { st.OnRead = nil; e.Purge() } // seal lands mid-load
	if _, err := e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`)); !errors.Is(err, store.ErrSealed) {
		t.Fatalf("encrypt during purge: %v", err)
	}
	if l := e.cached("k"); l != nil {
		t.Fatal("a key loaded across a purge stayed in the cache")
	}
	// The next request loads it normally.
	if _, err := e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`)); err != nil {
		t.Fatal(err)
	}
	if e.cached("k") == nil {
		t.Fatal("key not cached after a normal load")
	}
}

func TestPurgeZeroesCachedKeys(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	if _, err := e.CreateKey(ctx, "k", fields(t, `{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`)); err != nil {
		t.Fatal(err)
	}
	l := e.cached("k")
	secret := l.policy.Versions[1].Secret
	e.Purge()
	for _, b := range secret {
		if b != 0 {
			t.Fatal("purge left key material in memory")
		}
	}
	if _, err := l.crypto.(*localCrypto).handles[1].Encrypt([]byte("x"), keysOpts()); err == nil {
		t.Fatal("a purged handle still encrypts")
	}
}

// A deleted key leaves the cache.
func TestDeleteForgetsKey(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	e.CreateKey(ctx, "k", fields(t, `{}`))
	e.ConfigKey(ctx, "k", fields(t, `{"deletion_allowed":true}`))
	e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`))
	if e.cached("k") == nil {
		t.Fatal("not cached")
	}
	if _, err := e.DeleteKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if e.cached("k") != nil {
		t.Fatal("deleted key still cached")
	}
	if _, err := e.Decrypt(ctx, "k", fields(t, `{"ciphertext":"vault:v1:aGk="}`)); err == nil || err.Error() != "encryption key not found" {
		t.Fatalf("decrypt after delete: %v", err)
	}
}

// RotateDue rotates exactly the keys whose period has passed.
func TestRotateDue(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e.Now = func() time.Time { return now }
	e.CreateKey(ctx, "hourly", fields(t, `{"auto_rotate_period":"1h"}`))
	e.CreateKey(ctx, "daily", fields(t, `{"auto_rotate_period":"24h"}`))
	e.CreateKey(ctx, "never", fields(t, `{}`))
	now = now.Add(90 * time.Minute)
	n, err := e.RotateDue(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RotateDue: %d %v", n, err)
	}
	if n, _ := e.RotateDue(ctx); n != 0 {
		t.Fatalf("second RotateDue rotated %d", n)
	}
	now = now.Add(24 * time.Hour)
	if n, _ := e.RotateDue(ctx); n != 2 {
		t.Fatalf("a day later: %d", n)
	}
	for name, want := range map[string]int{"hourly": 3, "daily": 2, "never": 1} {
		r, _ := e.ReadKey(name)
		if got := r.Data["latest_version"]; got != want {
			t.Errorf("%s latest_version %v, want %d", name, got, want)
		}
	}
}

func keysOpts() keys.EncryptOptions { return keys.EncryptOptions{} }

// Two engines over one store stand for two nodes over one replicated
// state: a change made through one is seen at once by the other, whose
// cache is validated by applied index and revision.
func TestCacheSeesChangesFromElsewhere(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	a, b := New(st, nil), New(st, nil)
	a.CreateKey(ctx, "k", fields(t, `{}`))
	encVersion := func() any {
		r, err := a.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`))
		if err != nil {
			t.Fatal(err)
		}
		return r.Data["key_version"]
	}
	if v := encVersion(); v != 1 {
		t.Fatalf("version %v", v)
	}
	calls := 0
	st.OnRead = func() { calls++ }
	encVersion()
	encVersion()
	if calls != 0 {
		t.Fatalf("a cached key was read %d times with nothing applied", calls)
	}
	if _, err := b.RotateKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if v := encVersion(); v != 2 {
		t.Fatalf("after a rotation elsewhere: version %v", v)
	}
	b.ConfigKey(ctx, "k", fields(t, `{"deletion_allowed":true}`))
	if _, err := b.DeleteKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Decrypt(ctx, "k", fields(t, `{"ciphertext":"vault:v1:aGk="}`)); err == nil || err.Error() != "encryption key not found" {
		t.Fatalf("after a delete elsewhere: %v", err)
	}
	if a.cached("k") != nil {
		t.Fatal("a key deleted elsewhere is still cached")
	}
}

// The engine keeps at most cache.Max keys ready, preferring those in use;
// an evicted key works again at its next use.
func TestEngineCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	e.cache.Max = 8
	if _, err := e.CreateKey(ctx, "hot", fields(t, `{}`)); err != nil {
		t.Fatal(err)
	}
	ct, err := e.Encrypt(ctx, "hot", fields(t, `{"plaintext":"aGk="}`))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := e.CreateKey(ctx, "cold-"+strconv.Itoa(i), fields(t, `{}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Encrypt(ctx, "hot", fields(t, `{"plaintext":"aGk="}`)); err != nil {
			t.Fatal(err)
		}
		n, hot := e.cache.Len(), e.cached("hot")
		if n > 8 {
			t.Fatalf("%d keys cached, bound 8", n)
		}
		if hot == nil {
			t.Fatalf("after %d cold keys the key in use was evicted", i+1)
		}
	}
	if _, err := e.Encrypt(ctx, "cold-0", fields(t, `{"plaintext":"aGk="}`)); err != nil {
		t.Fatalf("an evicted key: %v", err)
	}
	pt, err := e.Decrypt(ctx, "hot", fields(t, `{"ciphertext":"`+ct.Data["ciphertext"].(string)+`"}`))
	if err != nil || pt.Data["plaintext"] != "aGk=" {
		t.Fatalf("decrypt = %v, %v", pt, err)
	}
}
