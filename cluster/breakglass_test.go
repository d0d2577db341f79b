package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testbuf"
)

// TestBreakGlassThreshold: break-glass needs T of N shares (one is not
// enough, a wrong one resets), issues an orphan token with the emergency
// policy that expires at the session's end, and says so in a WARN line.
func TestBreakGlassThreshold(t *testing.T) {
	logs := &testbuf.Buffer{}
	cfg := testConfig(t, t.TempDir())
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := n.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range res.Keys[:2] {
		if _, err := n.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := n.BreakGlassInit(0); !errors.Is(err, access.ErrBreakGlassNotConfigured) {
		t.Fatalf("init before config: %v", err)
	}
	if err := n.Access().SetBreakGlassConfig(ctx, access.BreakGlassConfig{Policy: "default", Duration: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	nonce, otp, required, err := n.BreakGlassInit(0)
	if err != nil || required != 2 {
		t.Fatalf("init: %d %v", required, err)
	}
	now := time.Now().UTC()
	progress, _, enc, _, err := n.BreakGlassUpdate(ctx, nonce, res.Keys[2], now)
	if err != nil || progress != 1 || enc != "" {
		t.Fatalf("one share: progress %d, token %q, %v", progress, enc, err)
	}
	if _, _, _, _, err := n.BreakGlassUpdate(ctx, "other-nonce", res.Keys[0], now); !errors.Is(err, ErrRekeyNonce) {
		t.Fatalf("wrong nonce: %v", err)
	}
	_, _, enc, s, err := n.BreakGlassUpdate(ctx, nonce, res.Keys[0], now)
	if err != nil || enc == "" {
		t.Fatalf("second share: %q %v", enc, err)
	}
	tok, err := DecodeRootToken(enc, otp)
	if err != nil {
		t.Fatal(err)
	}
	e, err := n.Access().LookupToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Orphan() || e.Renewable || e.ExpireTime.Sub(now) != 2*time.Hour || len(e.Policies) != 1 || e.Policies[0] != "default" || e.Accessor != s.Accessor {
		t.Fatalf("break-glass token: %+v", e)
	}
	if got, _ := n.Access().BreakGlassSession(now); got == nil || got.Accessor != e.Accessor {
		t.Fatalf("session: %+v", got)
	}
	if !strings.Contains(logs.String(), "[WARN]  BREAK-GLASS ACTIVATED") {
		t.Fatalf("no WARN line:\n%s", logs)
	}
	// The attempt is spent: the same nonce no longer works.
	if _, _, _, _, err := n.BreakGlassUpdate(ctx, nonce, res.Keys[1], now); !errors.Is(err, ErrRekeyNonce) {
		t.Fatalf("reused attempt: %v", err)
	}
	if _, err := n.Access().TidyGrants(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := n.Read(fsm.RecordBreakGlassActive); got != nil {
		t.Fatal("session kept after its end")
	}
}
