package transport

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/transit"
)

// pathLog is an HTTP server that records the paths asked of it.
type pathLog struct {
	srv   *httptest.Server
	mu    sync.Mutex
	paths []string
}

func newPathLog(t *testing.T, h http.HandlerFunc) *pathLog {
	p := &pathLog{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, r.URL.RequestURI())
		p.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pathLog) hits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

// TestRaftJoinIsNoProbe: the join of a node that is not a member yet (it
// needs no token) reaches only the /v1/sys/ join paths of a node's
// scheme://host: an address with a path, user info, query or fragment is
// refused before any request, no redirect is followed, a leader address
// the member reports is held to the same rule, and a failure tells the
// caller neither the remote status nor its body nor the connection error.
func TestRaftJoinIsNoProbe(t *testing.T) {
	cfg := cluster.DefaultConfig()
	cfg.NodeID = "n2"
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = "127.0.0.1:0"
	node, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Shutdown() })
	api, err := NewAPI(Config{Node: node, Transit: transit.New(node, nil), Audit: &memAudit{}, APIAddr: "http://127.0.0.1:8200",
		JoinHTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	h := &harness{t: t, node: node, api: api, srv: srv, client: srv.Client()}
	join := func(addr string) resp {
		t.Helper()
		return h.doWith("POST", "sys/storage/raft/join", map[string]any{"leader_api_addr": addr}, nil)
	}

	internal := newPathLog(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte("INTERNAL-SECRET"))
	})
	redirecting := newPathLog(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.srv.URL+"/admin", http.StatusFound)
	})
	failing := newPathLog(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"errors":["INTERNAL-SECRET"]}`))
	})
	// A fake member that names the internal server as the leader, with
	// a path and a query.
	pointing := newPathLog(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"ha_enabled":true,"is_self":false,"leader_address":"` + internal.srv.URL + `/admin?x=1"}`))
	})
	// A "leader" whose challenge endpoint refuses with its own text.
	refusing := newPathLog(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/sys/leader" {
			w.Write([]byte(`{"ha_enabled":true,"is_self":true}`))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"errors":["INTERNAL-SECRET"]}`))
	})

	for _, addr := range []string{
		internal.srv.URL + "/admin", internal.srv.URL + "/v1/sys/leader", internal.srv.URL + "?x=1",
		internal.srv.URL + "#frag", strings.Replace(internal.srv.URL, "http://", "http://user:pw@", 1),
		"ftp://127.0.0.1:1", "http://", "127.0.0.1:8200",
	} {
		r := join(addr)
		if r.status != http.StatusBadRequest || len(r.errs()) == 0 || !strings.Contains(r.errs()[0], "leader_api_addr must be") {
			t.Errorf("join %q: %d %s", addr, r.status, r.raw)
		}
	}
	if got := internal.hits(); len(got) != 0 {
		t.Fatalf("refused addresses were fetched: %v", got)
	}

	// Every failure answers the same 400, whatever the remote said.
	generic := func(r resp, base string) string {
		t.Helper()
		if r.status != http.StatusBadRequest || len(r.errs()) != 1 {
			t.Fatalf("join via %s: %d %s", base, r.status, r.raw)
		}
		msg := r.errs()[0]
		for _, leak := range []string{"SECRET", "HTTP", "500", "503", "418", "302", "refused:", "connect"} {
			if strings.Contains(strings.ReplaceAll(msg, base, "BASE"), leak) {
				t.Errorf("join via %s tells %q: %s", base, leak, msg)
			}
		}
		return strings.ReplaceAll(msg, base, "BASE")
	}
	unreachable := generic(join("http://127.0.0.1:1"), "http://127.0.0.1:1")
	if !strings.Contains(unreachable, "not a keyraft node") {
		t.Fatalf("unreachable: %s", unreachable)
	}
	for _, s := range []*pathLog{redirecting, failing, pointing} {
		if got := generic(join(s.srv.URL+"/"), s.srv.URL); got != unreachable {
			t.Errorf("join via %s: %q, want the same answer as for an unreachable address (%q)", s.srv.URL, got, unreachable)
		}
		if got := s.hits(); len(got) != 1 || got[0] != "/v1/sys/leader" {
			t.Errorf("join via %s fetched %v", s.srv.URL, got)
		}
	}
	if got := internal.hits(); len(got) != 0 {
		t.Fatalf("a redirect or a reported leader address was followed: %v", got)
	}
	generic(join(refusing.srv.URL), refusing.srv.URL)
	if got := refusing.hits(); len(got) != 2 || got[1] != "/v1/sys/storage/raft/bootstrap/challenge" {
		t.Fatalf("join via the refusing leader fetched %v", got)
	}
}
