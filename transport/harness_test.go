package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/plugins/catalog"
	"github.com/keyraft/keyraft/transit"
)

// rootToken is the root token of every harness that initializes itself.
const rootToken = "root"

// harness is one real node (Raft, bbolt, barrier) with its transit engine
// and HTTP API served by an httptest server.
type harness struct {
	t         testing.TB
	node      *cluster.Node
	engine    *transit.Engine
	api       *API
	srv       *httptest.Server
	client    *http.Client
	token     string
	unsealKey []byte
	audit     *memAudit
}

type harnessOpts struct {
	noInit         bool  // leave the node uninitialized (and sealed)
	maxRequestSize int64 // 0: the default
	maxBatchItems  int   // 0: the default
	discardAudit   bool  // count events instead of keeping them (benchmarks)
	raftAudit      bool  // record through the node's replicated audit log
	// plugins runs crypto backends as real plugin processes: the soft
	// plugin (built by the test) as the default backend.
	plugins bool
}

// memAudit records events in memory so tests can see what was recorded.
type memAudit struct {
	mu      sync.Mutex
	events  []audit.Event
	count   int
	discard bool
	fail    bool
}

func (m *memAudit) Record(_ context.Context, e *audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count++
	if !m.discard {
		m.events = append(m.events, *e)
	}
	if m.fail {
		return io.ErrClosedPipe
	}
	return nil
}

func (m *memAudit) all() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]audit.Event(nil), m.events...)
}

func (m *memAudit) last() audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.events) == 0 {
		return audit.Event{}
	}
	return m.events[len(m.events)-1]
}

func (m *memAudit) setFail(v bool) {
	m.mu.Lock()
	m.fail = v
	m.mu.Unlock()
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	h0 := &harness{}
	cfg := cluster.DefaultConfig()
	cfg.NodeID = "n1"
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.HeartbeatTimeout = 100 * time.Millisecond
	cfg.ElectionTimeout = 100 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	var plugins *catalog.Manager
	if o.plugins {
		cfg.BuiltinPlugins, plugins = softPlugin(t, func() *cluster.Node { return h0.node })
	}
	node, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Shutdown() })
	h0.node = node
	bctx, bcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer bcancel()
	if err := node.Bootstrap(bctx); err != nil {
		t.Fatal(err)
	}

	h := h0
	h.t, h.audit = t, &memAudit{discard: o.discardAudit}
	if !o.noInit {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		res, err := node.DevInit(ctx, rootToken)
		if err != nil {
			t.Fatal(err)
		}
		h.token = res.RootToken
		h.unsealKey = res.Keys[0]
	}
	h.engine = transit.New(node, nil)
	if plugins != nil {
		h.engine.Backends = plugins
	}
	node.OnSeal(h.engine.Purge)
	var rec audit.Recorder = h.audit
	if o.raftAudit {
		rec = node.AuditLog()
	}
	h.api, err = NewAPI(Config{
		Node: node, Transit: h.engine, Audit: rec, Plugins: plugins,
		APIAddr: "http://127.0.0.1:8200", MaxRequestSize: o.maxRequestSize, MaxBatchItems: o.maxBatchItems,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.api)
	t.Cleanup(h.srv.Close)
	h.client = h.srv.Client()
	return h
}

// vaultClient is the unmodified github.com/hashicorp/vault/api client
// for the API at addr, sending token.
func vaultClient(t testing.TB, addr, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// with returns a copy of h that reports to t (for subtests, parallel ones
// included); it shares the node and server.
func (h *harness) with(t testing.TB) *harness {
	c := *h
	c.t = t
	return &c
}

// resp is a decoded API answer.
type resp struct {
	status int
	body   map[string]any
	raw    []byte
	header http.Header
}

// data returns the "data" object of a Vault envelope.
func (r resp) data() map[string]any {
	d, _ := r.body["data"].(map[string]any)
	return d
}

// str returns data[name] as a string.
func (r resp) str(name string) string {
	s, _ := r.data()[name].(string)
	return s
}

// errs returns the "errors" list.
func (r resp) errs() []string {
	l, _ := r.body["errors"].([]any)
	out := make([]string, len(l))
	for i, v := range l {
		out[i], _ = v.(string)
	}
	return out
}

func (r resp) warnings() []string {
	l, _ := r.body["warnings"].([]any)
	out := make([]string, len(l))
	for i, v := range l {
		out[i], _ = v.(string)
	}
	return out
}

// do sends a request with the harness token. body is sent as JSON unless
// it is a string or []byte, which are sent as is.
func (h *harness) do(method, path string, body any) resp {
	h.t.Helper()
	return h.doWith(method, path, body, map[string]string{"X-Vault-Token": h.token})
}

func (h *harness) doWith(method, path string, body any, hdr map[string]string) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.srv.URL+"/v1/"+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		h.t.Fatal(err)
		return resp{}
	}
	for k, v := range hdr {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
		return resp{}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
		return resp{}
	}
	out := resp{status: res.StatusCode, raw: raw, header: res.Header}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			h.t.Fatalf("%s %s: status %d, body is not a JSON object: %q", method, path, res.StatusCode, raw)
		}
	}
	return out
}

// must sends a request and fails the test unless the status is want.
func (h *harness) must(want int, method, path string, body any) resp {
	h.t.Helper()
	r := h.do(method, path, body)
	if r.status != want {
		h.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, want, r.raw)
	}
	return r
}

// createKey creates a key with the given parameters.
func (h *harness) createKey(name string, params map[string]any) resp {
	h.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	return h.must(200, "POST", "transit/keys/"+name, params)
}

// keyInfo reads a key.
func (h *harness) keyInfo(name string) map[string]any {
	h.t.Helper()
	return h.must(200, "GET", "transit/keys/"+name, nil).data()
}

// num returns a JSON number field as an int.
func num(m map[string]any, name string) int {
	f, _ := m[name].(float64)
	return int(f)
}
