package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
)

// A share ceremony in progress (generate-root, break-glass, rekey) is not
// replaced by a second start: the start is refused, the shares already
// given still count, a malformed share is refused without dropping them,
// and only a cancel (or the completion) ends the ceremony.
func TestCeremonyStartRefusedWhileInProgress(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, t.TempDir())
	res, err := n.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range res.Keys[:2] {
		if _, err := n.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("generate-root", func(t *testing.T) {
		nonce, otp, _, err := n.GenerateRootInit()
		if err != nil {
			t.Fatal(err)
		}
		if p, _, _, err := n.GenerateRootUpdate(ctx, nonce, res.Keys[0]); err != nil || p != 1 {
			t.Fatalf("first share: %d %v", p, err)
		}
		if _, _, _, err := n.GenerateRootInit(); !errors.Is(err, ErrCeremonyInProgress) || !errors.Is(err, ErrGenerateRootInProgress) {
			t.Fatalf("second start: %v", err)
		}
		if _, _, _, err := n.GenerateRootUpdate(ctx, nonce, []byte{1}); !errors.Is(err, ErrInvalidUnsealKey) {
			t.Fatalf("malformed share: %v", err)
		}
		if _, _, _, err := n.GenerateRootUpdate(ctx, nonce, []byte{0, 0xff}); !errors.Is(err, ErrInvalidUnsealKey) {
			t.Fatalf("share of another length: %v", err)
		}
		if got, p, ok := n.GenerateRootProgress(); !ok || got != nonce || p != 1 {
			t.Fatalf("progress after the refused start and the bad share: %q %d %v", got, p, ok)
		}
		_, _, enc, err := n.GenerateRootUpdate(ctx, nonce, res.Keys[1])
		if err != nil || enc == "" {
			t.Fatalf("second share: %q %v", enc, err)
		}
		tok, err := DecodeRootToken(enc, otp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Access().LookupToken(tok); err != nil {
			t.Fatalf("the token: %v", err)
		}
		// Completed: a new one may start; a cancel ends it.
		nonce, _, _, err = n.GenerateRootInit()
		if err != nil {
			t.Fatal(err)
		}
		if got := n.GenerateRootCancel(); got != nonce {
			t.Fatalf("cancel returned %q, want %q", got, nonce)
		}
		if _, _, _, err := n.GenerateRootUpdate(ctx, nonce, res.Keys[0]); !errors.Is(err, ErrRekeyNonce) {
			t.Fatalf("share after cancel: %v", err)
		}
		if _, _, _, err := n.GenerateRootInit(); err != nil {
			t.Fatalf("start after cancel: %v", err)
		}
		n.GenerateRootCancel()
	})

	// A junk share given first (anyone who knows the nonce can) does not
	// make the real shares look wrong.
	t.Run("junk share first", func(t *testing.T) {
		nonce, _, _, err := n.GenerateRootInit()
		if err != nil {
			t.Fatal(err)
		}
		defer n.GenerateRootCancel()
		if _, _, _, err := n.GenerateRootUpdate(ctx, nonce, []byte{0, 0xff}); !errors.Is(err, ErrInvalidUnsealKey) {
			t.Fatalf("junk share: %v", err)
		}
		for i, k := range res.Keys[:2] {
			if _, _, enc, err := n.GenerateRootUpdate(ctx, nonce, k); err != nil || (i == 1) != (enc != "") {
				t.Fatalf("real share %d after the junk one: %q %v", i+1, enc, err)
			}
		}
	})

	t.Run("break-glass", func(t *testing.T) {
		if err := n.Access().SetBreakGlassConfig(ctx, access.BreakGlassConfig{Policy: "default"}); err != nil {
			t.Fatal(err)
		}
		nonce, _, _, err := n.BreakGlassInit(0)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		if p, _, _, _, err := n.BreakGlassUpdate(ctx, nonce, res.Keys[0], now); err != nil || p != 1 {
			t.Fatalf("first share: %d %v", p, err)
		}
		if _, _, _, err := n.BreakGlassInit(0); !errors.Is(err, ErrBreakGlassInProgress) {
			t.Fatalf("second start: %v", err)
		}
		if _, _, _, _, err := n.BreakGlassUpdate(ctx, nonce, []byte{1}, now); !errors.Is(err, ErrInvalidUnsealKey) {
			t.Fatalf("malformed share: %v", err)
		}
		if got, p, _, ok := n.BreakGlassProgress(); !ok || got != nonce || p != 1 {
			t.Fatalf("progress after the refused start: %q %d %v", got, p, ok)
		}
		if got := n.BreakGlassCancel(); got != nonce {
			t.Fatalf("cancel returned %q", got)
		}
		if _, _, _, err := n.BreakGlassInit(0); err != nil {
			t.Fatalf("start after cancel: %v", err)
		}
		n.BreakGlassCancel()
	})

	t.Run("rekey", func(t *testing.T) {
		st, err := n.RekeyInit(3, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got, _, err := n.RekeyUpdate(ctx, st.Nonce, res.Keys[0]); err != nil || got.Progress != 1 {
			t.Fatalf("first share: %+v %v", got, err)
		}
		if _, err := n.RekeyInit(5, 3); !errors.Is(err, ErrRekeyInProgress) {
			t.Fatalf("second init: %v", err)
		}
		if got, _, err := n.RekeyUpdate(ctx, st.Nonce, []byte{1}); !errors.Is(err, ErrInvalidUnsealKey) || got.Progress != 1 {
			t.Fatalf("malformed share: %+v %v", got, err)
		}
		if got := n.RekeyCancel(); got != st.Nonce {
			t.Fatalf("cancel returned %q", got)
		}
		if _, err := n.RekeyInit(3, 2); err != nil {
			t.Fatalf("init after cancel: %v", err)
		}
		n.RekeyCancel()
	})
}
