package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/store/storetest"
	"github.com/keyraft/keyraft/transit"
)

// memNode is a Node without Raft: its store is in memory, it is always
// the leader with a lease, and it may be sealed. Every ability the
// pipeline tests below do not use is the nil embedded Node (a call
// panics, which fails the test that made it).
type memNode struct {
	Node
	*storetest.Mem
	acc    *access.Service
	sealed atomic.Bool
	onSeal []func()
}

func newMemNode(t *testing.T) *memNode {
	n := &memNode{Mem: storetest.New()}
	acc, err := access.New(access.Config{Store: n.Mem, NodeID: "mem"})
	if err != nil {
		t.Fatal(err)
	}
	n.acc = acc
	return n
}

// The store's methods are Mem's (both embedded types have them).
func (n *memNode) Read(k string) ([]byte, uint64, error) { return n.Mem.Read(k) }
func (n *memNode) Revision(k string) (uint64, error)     { return n.Mem.Revision(k) }
func (n *memNode) List(p string) ([]string, error)       { return n.Mem.List(p) }
func (n *memNode) Commit(ctx context.Context, txn *cluster.Txn) (uint64, error) {
	return n.Mem.Commit(ctx, txn)
}

func (n *memNode) RaftIndexes() (uint64, uint64) { return n.Mem.RaftIndexes() }
func (n *memNode) Access() *access.Service       { return n.acc }
func (n *memNode) Sealed() bool                  { return n.sealed.Load() }
func (n *memNode) IsLeader() bool                { return true }
func (n *memNode) CheckLease() error             { return nil }
func (n *memNode) OnSeal(fn func())              { n.onSeal = append(n.onSeal, fn) }
func (n *memNode) Config() cluster.Config        { return cluster.Config{NodeID: "mem"} }
func (n *memNode) AuditHMAC(v []byte) (string, bool) {
	if n.Sealed() {
		return "", false
	}
	return "hmac-sha256:test", true
}

func (n *memNode) seal() {
	n.sealed.Store(true)
	n.Mem.SetSealed(true)
	for _, fn := range n.onSeal {
		fn()
	}
}

// The pipeline runs on any Node: authentication, the ACL from the
// caller's policies, the engine, the audit event with the real status,
// and the sealed answer, all without Raft.
func TestPipelineWithoutRaft(t *testing.T) {
	n := newMemNode(t)
	engine := transit.New(n, nil)
	n.OnSeal(engine.Purge)
	rec := &memAudit{}
	api, err := NewAPI(Config{Node: n, Transit: engine, Audit: rec})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	ctx := context.Background()
	if err := n.acc.PutPolicy(ctx, "enc", `
path "transit/encrypt/app" { capabilities = ["create", "update"] }
path "transit/encrypt/new" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	root, _, err := n.acc.CreateToken(ctx, access.TokenRequest{Policies: []string{"root"}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	user, _, err := n.acc.CreateToken(ctx, access.TokenRequest{Policies: []string{"enc"}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, client: srv.Client(), audit: rec}
	call := func(token, method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("X-Vault-Token", token)
		}
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	pt := `{"plaintext":"aGk="}`
	for _, c := range []struct {
		token, method, path string
		want                int
	}{
		{"", "POST", "/v1/transit/encrypt/app", 403},     // no token
		{"nope", "POST", "/v1/transit/encrypt/app", 403}, // unknown token
		{user, "POST", "/v1/transit/encrypt/app", 200},   // created on first use (the existence check)
		{user, "POST", "/v1/transit/encrypt/other", 403}, // not in its policy
		{user, "GET", "/v1/transit/keys/app", 403},       // read is another capability
		{root, "GET", "/v1/transit/keys/app", 200},       // root may
		{root, "DELETE", "/v1/transit/unknown/x", 404},   // no row
		{root, "PATCH", "/v1/transit/encrypt/app", 405},  // no such method
	} {
		got := call(c.token, c.method, c.path, pt)
		if got != c.want {
			t.Errorf("%s %s (token %q): %d, want %d", c.method, c.path, c.token, got, c.want)
		}
		if ev := rec.last(); ev.Status != got {
			t.Errorf("%s %s: the audit event says %d, the answer was %d", c.method, c.path, ev.Status, got)
		}
	}
	n.seal()
	if got := call(root, "POST", "/v1/transit/encrypt/app", pt); got != http.StatusServiceUnavailable {
		t.Errorf("encrypt on a sealed node: %d, want 503", got)
	}
}
