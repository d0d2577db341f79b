package access_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/store"
	"github.com/keyraft/keyraft/store/storetest"
)

// The tests of this package run the Service over the in-memory store
// (store/storetest), without Raft: every Commit is one applied entry with
// the node's compare-and-set semantics. Time is always the caller's (t0
// and offsets from it), never the wall clock, so nothing sleeps.

// t0 is the time every test starts at.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

var bg = context.Background()

// newService returns a Service over a fresh in-memory store.
func newService(t *testing.T) (*access.Service, *storetest.Mem) {
	t.Helper()
	m := storetest.New()
	svc, err := access.New(access.Config{Store: m, NodeID: "test-node"})
	if err != nil {
		t.Fatal(err)
	}
	return svc, m
}

// hookStore is a Mem that records every commit (with the audit event its
// context carries) and can run a hook before one, to interleave another
// change with the Service's read-modify-write.
type hookStore struct {
	*storetest.Mem

	mu      sync.Mutex
	before  func(txn *store.Txn)
	commits []commitRec
}

type commitRec struct {
	ev  *audit.Event
	txn *store.Txn
	err error
}

func (h *hookStore) Commit(ctx context.Context, txn *store.Txn) (uint64, error) {
	h.mu.Lock()
	f := h.before
	h.mu.Unlock()
	if f != nil {
		f(txn)
	}
	rev, err := h.Mem.Commit(ctx, txn)
	h.mu.Lock()
	h.commits = append(h.commits, commitRec{ev: audit.EventFrom(ctx), txn: txn, err: err})
	h.mu.Unlock()
	return rev, err
}

func (h *hookStore) setBefore(f func(txn *store.Txn)) {
	h.mu.Lock()
	h.before = f
	h.mu.Unlock()
}

// events returns the operations of the audit events of successful
// commits, in order ("" for a commit without an event).
func (h *hookStore) events() []*audit.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*audit.Event
	for _, c := range h.commits {
		if c.err == nil && c.ev != nil {
			out = append(out, c.ev)
		}
	}
	return out
}

func newHookService(t *testing.T) (*access.Service, *hookStore) {
	t.Helper()
	h := &hookStore{Mem: storetest.New()}
	svc, err := access.New(access.Config{Store: h, NodeID: "test-node"})
	if err != nil {
		t.Fatal(err)
	}
	return svc, h
}

// mkToken creates a token or fails the test.
func mkToken(t *testing.T, svc *access.Service, req access.TokenRequest) (string, *access.TokenEntry) {
	t.Helper()
	if req.Now.IsZero() {
		req.Now = t0
	}
	if req.Policies == nil {
		req.Policies = []string{"default"}
	}
	tok, e, err := svc.CreateToken(bg, req)
	if err != nil {
		t.Fatalf("CreateToken(%+v): %v", req, err)
	}
	return tok, e
}

// mustGone fails unless token no longer exists.
func mustGone(t *testing.T, svc *access.Service, what, token string) {
	t.Helper()
	if e, err := svc.LookupToken(token); !errors.Is(err, access.ErrPermissionDenied) {
		t.Fatalf("%s: token still there (%+v, %v)", what, e, err)
	}
}

// mustLive fails unless token exists, and returns its entry.
func mustLive(t *testing.T, svc *access.Service, what, token string) *access.TokenEntry {
	t.Helper()
	e, err := svc.LookupToken(token)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return e
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deleteTxn deletes key (another writer's change).
func deleteTxn(key string) *store.Txn {
	return &store.Txn{Writes: []store.Write{{Key: key, Delete: true}}}
}
