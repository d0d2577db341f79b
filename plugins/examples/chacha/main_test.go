package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyraft/keyraft/plugins/conformance"
	"github.com/keyraft/keyraft/plugins/sdk"
)

// TestConformance runs the suite on the backend in this process: quick,
// and under the race detector.
func TestConformance(t *testing.T) {
	conformance.TestCrypto(t, func(t *testing.T) sdk.CryptoBackend { return Backend{} })
}

// TestConformanceBinary builds the plugin and runs the suite against the
// binary, started as a keyraft node starts it — what
// `keyraft plugin test -type=crypto ./chacha` does.
func TestConformanceBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "chacha")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var report strings.Builder
	failed, err := conformance.RunBinary(context.Background(), conformance.KindCrypto, bin, nil, &report)
	if err != nil || failed != 0 {
		t.Fatalf("%d checks failed (%v):\n%s", failed, err, report.String())
	}
	if !strings.Contains(report.String(), "PASS  crypto/chacha20-poly1305/EncryptDecrypt") {
		t.Fatalf("the report lacks the key type's checks:\n%s", report.String())
	}
	t.Log("\n" + report.String())
}

// TestRunByHand: started without a node, the binary says what it is and
// exits non-zero.
func TestRunByHand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "chacha")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "keyraft crypto plugin") {
		t.Fatalf("run by hand: %v\n%s", err, out)
	}
}
