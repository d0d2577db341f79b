// Package softhsm makes throwaway SoftHSM2 tokens for the tests of the
// PKCS#11 packages. The tests never skip: without SoftHSM2 (and OpenSC
// for Tool) they fail and say how to install it.
package softhsm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SOPIN is the security officer PIN of every token Token makes.
const SOPIN = "5678"

var candidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",                   // Debian, Ubuntu
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",  // multiarch
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", // multiarch
	"/usr/lib64/pkcs11/libsofthsm2.so",                  // Fedora, RHEL
	"/usr/lib/pkcs11/libsofthsm2.so",                    // Arch
	"/usr/local/lib/softhsm/libsofthsm2.so",             // source build
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",          // Homebrew
}

// InstallHint says how to get what the tests need.
const InstallHint = "install SoftHSM2 and OpenSC (Debian/Ubuntu: sudo apt-get install softhsm2 opensc; " +
	"Fedora: sudo dnf install softhsm opensc; macOS: brew install softhsm opensc), " +
	"or set KEYRAFT_TEST_PKCS11_LIB to the path of libsofthsm2.so; scripts/test.sh installs them on Debian/Ubuntu"

// Lib returns the SoftHSM2 module (KEYRAFT_TEST_PKCS11_LIB overrides the
// search), failing t when there is none.
func Lib(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KEYRAFT_TEST_PKCS11_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("KEYRAFT_TEST_PKCS11_LIB=%s: %v", p, err)
		}
		return p
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("SoftHSM2 (libsofthsm2.so) not found in %v: %s", candidates, InstallHint)
	return ""
}

func lookTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found on PATH: %s", name, InstallHint)
	}
}

// HSM is an empty SoftHSM2 token directory for one test.
type HSM struct {
	T    testing.TB
	Lib  string // the module
	Conf string // the softhsm2.conf that SOFTHSM2_CONF names
}

// New makes the directory under t.TempDir() and points SOFTHSM2_CONF at
// it for the rest of the test, for this process and the processes it
// starts. So the test cannot be parallel — nor could it anyway: the
// module is process-global, and SoftHSM reads SOFTHSM2_CONF only in
// C_Initialize, so every Token of the previous test must be closed.
func New(t testing.TB) *HSM {
	t.Helper()
	lib := Lib(t)
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
	return &HSM{T: t, Lib: lib, Conf: conf}
}

// Token initializes a token labelled label with user PIN pin (SO PIN
// SOPIN) in the first free slot.
func (h *HSM) Token(label, pin string) {
	h.T.Helper()
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", SOPIN).CombinedOutput()
	if err != nil {
		h.T.Fatalf("softhsm2-util --init-token %s: %v\n%s", label, err, out)
	}
}

// Tool runs OpenSC's pkcs11-tool against the module and returns its output.
func (h *HSM) Tool(args ...string) string {
	h.T.Helper()
	lookTool(h.T, "pkcs11-tool")
	out, err := exec.Command("pkcs11-tool", append([]string{"--module", h.Lib}, args...)...).CombinedOutput()
	if err != nil {
		h.T.Fatalf("pkcs11-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
