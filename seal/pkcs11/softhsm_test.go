package pkcs11

import (
	"context"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/pkcs11/softhsm"
)

// These tests run against a real SoftHSM2 token (internal/pkcs11/softhsm).
// They never skip: without SoftHSM2 and OpenSC they fail and say how to
// install them.

const testPIN = "1234"

// hsm is a throwaway SoftHSM2 token directory for one test; every test
// closes its Seals, so the next test's Open initializes the module afresh.
type hsm struct {
	*softhsm.HSM
	t testing.TB
}

func newHSM(t testing.TB) *hsm { return &hsm{HSM: softhsm.New(t), t: t} }

// token initializes a token labelled label with user PIN pin. Call it
// before opening Seals on it.
func (h *hsm) token(label, pin string) { h.t.Helper(); h.Token(label, pin) }

// config is a Config for token label, key "keyraft-root" and PIN 1234.
func (h *hsm) config(label string) Config {
	return Config{Lib: h.Lib, TokenLabel: label, PIN: testPIN, KeyLabel: "keyraft-root", GenerateKey: true}
}

// open opens a Seal and closes it when the test ends.
func (h *hsm) open(cfg Config) *Seal {
	h.t.Helper()
	s, err := Open(cfg)
	if err != nil {
		h.t.Fatalf("Open(%v): %v", cfg, err)
	}
	h.t.Cleanup(func() {
		if err := s.Close(); err != nil {
			h.t.Errorf("Close: %v", err)
		}
	})
	return s
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
