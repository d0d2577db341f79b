package access_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testbuf"
	"github.com/keyraft/keyraft/store"
	"github.com/keyraft/keyraft/store/storetest"
)

func TestBreakGlassConfig(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	if c, err := svc.BreakGlassConfig(); err != nil || c != nil {
		t.Fatalf("config before any: %+v %v", c, err)
	}
	for _, c := range []access.BreakGlassConfig{
		{Policy: ""}, {Policy: "root"}, {Policy: "nope"},
		{Policy: "default", Duration: 30 * time.Second},
		{Policy: "default", Duration: access.MaxBreakGlassDuration + time.Second},
	} {
		if err := svc.SetBreakGlassConfig(bg, c); !errors.Is(err, access.ErrInvalidRequest) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if m.Index() != 0 {
		t.Fatal("refused configs committed")
	}
	if err := svc.SetBreakGlassConfig(bg, access.BreakGlassConfig{Policy: "default"}); err != nil {
		t.Fatal(err)
	}
	if c, err := svc.BreakGlassConfig(); err != nil || c.Policy != "default" || c.Duration != access.DefaultBreakGlassDuration {
		t.Fatalf("config: %+v %v", c, err)
	}
}

// TestIssueBreakGlass: a session is a fresh, non-renewable orphan token
// with the emergency policy for the configured time, one at a time; it
// ends at its expiry (tidy removes its record with an audit event), and
// then another may start.
func TestIssueBreakGlass(t *testing.T) {
	t.Parallel()
	logs := &testbuf.Buffer{}
	h := &hookStore{Mem: storetest.New()}
	svc, err := access.New(access.Config{Store: h, NodeID: "test-node",
		Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.IssueBreakGlass(bg, 0, t0); !errors.Is(err, access.ErrBreakGlassNotConfigured) {
		t.Fatalf("issue before config: %v", err)
	}
	if err := svc.PutPolicy(bg, "ops", appPolicy); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetBreakGlassConfig(bg, access.BreakGlassConfig{Policy: "ops", Duration: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	tok, s, err := svc.IssueBreakGlass(bg, 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	e := mustLive(t, svc, "break-glass token", tok)
	if !e.Orphan() || e.Renewable || !e.ExpireTime.Equal(t0.Add(2*time.Hour)) || !slices.Equal(e.Policies, []string{"default", "ops"}) ||
		e.Path != "sys/break-glass" || e.Meta["break_glass"] != "true" || e.Accessor != s.Accessor {
		t.Fatalf("break-glass token %+v", e)
	}
	if s.Policy != "ops" || !s.StartedAt.Equal(t0) || !s.ExpiresAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("session %+v", s)
	}
	if !strings.Contains(logs.String(), "BREAK-GLASS ACTIVATED") {
		t.Fatalf("no warning logged:\n%s", logs)
	}
	if _, err := svc.RenewToken(bg, tok, time.Hour, t0.Add(time.Hour)); !errors.Is(err, access.ErrInvalidRequest) {
		t.Fatalf("renewal of a break-glass token: %v", err)
	}
	if got, err := svc.BreakGlassSession(t0.Add(time.Hour)); err != nil || got == nil || got.Accessor != s.Accessor {
		t.Fatalf("session during: %+v %v", got, err)
	}
	if got, _ := svc.BreakGlassSession(s.ExpiresAt); got != nil {
		t.Fatal("session on at its end")
	}
	if _, _, err := svc.IssueBreakGlass(bg, 0, t0.Add(time.Hour)); !errors.Is(err, access.ErrBreakGlassActive) {
		t.Fatalf("second session: %v", err)
	}
	if l, _ := svc.ListTokens(); len(l) != 1 {
		t.Fatalf("%d tokens after a refused second session", len(l))
	}

	end := s.ExpiresAt
	if _, err := svc.TidyGrants(bg, end.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, rev := h.Get(fsm.RecordBreakGlassActive); rev == 0 {
		t.Fatal("tidy ended a session before its end")
	}
	if _, err := svc.TidyGrants(bg, end); err != nil {
		t.Fatal(err)
	}
	if _, rev := h.Get(fsm.RecordBreakGlassActive); rev != 0 {
		t.Fatal("session record kept after its end")
	}
	evs := h.events()
	if len(evs) != 1 || evs[0].Operation != "sys/break-glass/expire" || evs[0].Details["accessor"] != s.Accessor {
		t.Fatalf("events %+v", evs)
	}
	if n, err := svc.TidyTokens(bg, end); err != nil || n != 1 {
		t.Fatalf("token tidy: %d %v", n, err)
	}

	tok2, s2, err := svc.IssueBreakGlass(bg, 30*time.Minute, end.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if tok2 == tok || !s2.ExpiresAt.Equal(end.Add(90*time.Minute)) {
		t.Fatalf("second session %+v", s2)
	}
}

// TestIssueBreakGlassAfterExpiredSession: a session past its end whose
// record tidy has not removed yet does not block the next.
func TestIssueBreakGlassAfterExpiredSession(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	if err := svc.SetBreakGlassConfig(bg, access.BreakGlassConfig{Policy: "default", Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.IssueBreakGlass(bg, 0, t0); err != nil {
		t.Fatal(err)
	}
	_, s, err := svc.IssueBreakGlass(bg, 0, t0.Add(time.Hour))
	if err != nil || !s.StartedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("session after the first's end: %+v %v", s, err)
	}
}

// TestIssueBreakGlassRace: when another node's session commits between
// the check and this one's commit, this one is ErrBreakGlassActive and
// the token it made is revoked.
func TestIssueBreakGlassRace(t *testing.T) {
	t.Parallel()
	svc, h := newHookService(t)
	if err := svc.SetBreakGlassConfig(bg, access.BreakGlassConfig{Policy: "default"}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	h.setBefore(func(txn *store.Txn) {
		for _, w := range txn.Writes {
			if w.Key == fsm.RecordBreakGlassActive {
				once.Do(func() {
					h.Put(fsm.RecordBreakGlassActive, mustJSON(t, access.BreakGlassSession{Accessor: "other", Policy: "default",
						StartedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
				})
			}
		}
	})
	tok, s, err := svc.IssueBreakGlass(bg, 0, t0)
	if !errors.Is(err, access.ErrBreakGlassActive) || tok != "" || s != nil {
		t.Fatalf("losing activation: %q %+v %v", tok, s, err)
	}
	if l, _ := svc.ListTokens(); len(l) != 0 {
		t.Fatalf("the losing activation's token is left: %+v", l[0])
	}
	if got, _ := svc.BreakGlassSession(t0); got == nil || got.Accessor != "other" {
		t.Fatalf("the winning session: %+v", got)
	}
}
