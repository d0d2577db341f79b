package pkcs11

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run against a real SoftHSM2 token. They never skip: without
// SoftHSM2 and OpenSC they fail and say how to install them.

const (
	testPIN   = "1234"
	testSOPIN = "5678"
)

var softhsmCandidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",                   // Debian, Ubuntu
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",  // multiarch
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", // multiarch
	"/usr/lib64/pkcs11/libsofthsm2.so",                  // Fedora, RHEL
	"/usr/lib/pkcs11/libsofthsm2.so",                    // Arch
	"/usr/local/lib/softhsm/libsofthsm2.so",             // source build
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",          // Homebrew
}

const installHint = "install SoftHSM2 and OpenSC (Debian/Ubuntu: sudo apt-get install softhsm2 opensc; " +
	"Fedora: sudo dnf install softhsm opensc; macOS: brew install softhsm opensc), " +
	"or set KEYRAFT_TEST_PKCS11_LIB to the path of libsofthsm2.so; scripts/test.sh installs them on Debian/Ubuntu"

// softhsmLib returns the SoftHSM2 module, failing the test when it is
// missing.
func softhsmLib(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KEYRAFT_TEST_PKCS11_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("KEYRAFT_TEST_PKCS11_LIB=%s: %v", p, err)
		}
		return p
	}
	for _, p := range softhsmCandidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("SoftHSM2 (libsofthsm2.so) not found in %v: %s", softhsmCandidates, installHint)
	return ""
}

func lookTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH: %s", name, installHint)
	}
	return p
}

// hsm is a throwaway SoftHSM2 token directory for one test.
type hsm struct {
	t    testing.TB
	lib  string
	conf string
}

// newHSM makes an empty SoftHSM2 token directory under t.TempDir() and
// points SOFTHSM2_CONF at it for the rest of the test (so the test cannot
// be parallel — nor could it be anyway: the module is process-global).
// SoftHSM reads SOFTHSM2_CONF in C_Initialize; every test closes its
// Seals, so the next test's Open initializes the module afresh.
func newHSM(t testing.TB) *hsm {
	t.Helper()
	lib := softhsmLib(t)
	lookTool(t, "softhsm2-util")
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	return &hsm{t: t, lib: lib, conf: conf}
}

// token initializes a token labelled label with user PIN pin (SO PIN
// 5678) in the first free slot. Call it before opening Seals on it.
func (h *hsm) token(label, pin string) {
	h.t.Helper()
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", testSOPIN).CombinedOutput()
	if err != nil {
		h.t.Fatalf("softhsm2-util --init-token %s: %v\n%s", label, err, out)
	}
}

// config is a Config for token label, key "keyraft-root" and PIN 1234.
func (h *hsm) config(label string) Config {
	return Config{Lib: h.lib, TokenLabel: label, PIN: testPIN, KeyLabel: "keyraft-root", GenerateKey: true}
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

// pkcs11Tool runs OpenSC's pkcs11-tool against the module.
func (h *hsm) pkcs11Tool(args ...string) string {
	h.t.Helper()
	lookTool(h.t, "pkcs11-tool")
	out, err := exec.Command("pkcs11-tool", append([]string{"--module", h.lib}, args...)...).CombinedOutput()
	if err != nil {
		h.t.Fatalf("pkcs11-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
