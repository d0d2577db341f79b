package pkcs11

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/internal/plugintest"
)

// These tests run against a real SoftHSM2 token in a temporary
// directory. They never skip: without SoftHSM2 they fail and say how to
// install it.

const (
	testPIN   = "1234"
	testToken = "keyraft"
)

var softhsmCandidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

const installHint = "install SoftHSM2 and OpenSC (Debian/Ubuntu: apt-get install softhsm2 opensc), " +
	"or set KEYRAFT_TEST_PKCS11_LIB to libsofthsm2.so"

func softhsmLib(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KEYRAFT_TEST_PKCS11_LIB"); p != "" {
		return p
	}
	for _, p := range softhsmCandidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("SoftHSM2 not found in %v: %s", softhsmCandidates, installHint)
	return ""
}

// hsm is a SoftHSM2 token directory for one test, with one token
// labelled testToken (user PIN testPIN). SOFTHSM2_CONF points at it for
// the rest of the test, for this process and (through the environment)
// for plugin processes it starts.
type hsm struct {
	t    testing.TB
	lib  string
	conf string
}

func newHSM(t testing.TB) *hsm {
	t.Helper()
	lib := softhsmLib(t)
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		t.Fatalf("softhsm2-util not found: %s", installHint)
	}
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
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", testToken, "--pin", testPIN, "--so-pin", "5678").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return &hsm{t: t, lib: lib, conf: conf}
}

func (h *hsm) config() Config {
	return Config{Lib: h.lib, TokenLabel: testToken, PIN: testPIN}
}

// open opens the backend in process and closes it when the test ends.
func (h *hsm) open() *Backend {
	h.t.Helper()
	b, err := Open(h.config())
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	h.t.Cleanup(func() {
		if err := b.Close(); err != nil {
			h.t.Errorf("Close: %v", err)
		}
	})
	return b
}

// args are the plugin's arguments for this token; the PIN travels in
// the environment.
func (h *hsm) args() []string { return []string{"-lib", h.lib, "-token-label", testToken} }

func (h *hsm) env() []string {
	return []string{"SOFTHSM2_CONF=" + h.conf, EnvPIN + "=" + testPIN}
}

// buildPlugin compiles cmd/keyraft-plugin-pkcs11 once per test binary.
var pluginBin struct {
	path string
	sum  []byte
}

func buildPlugin(t testing.TB) (string, []byte) {
	t.Helper()
	if pluginBin.path == "" {
		dir, err := os.MkdirTemp("", "keyraft-pkcs11-plugin-")
		if err != nil {
			t.Fatal(err)
		}
		pluginBin.path, pluginBin.sum = plugintest.Build(t, dir, "github.com/keyraft/keyraft/cmd/keyraft-plugin-pkcs11")
	}
	return pluginBin.path, pluginBin.sum
}

// startPlugin starts the real plugin process through the host, as a
// node does, and stops it when the test ends.
func (h *hsm) startPlugin(name string, log *plugintest.SyncBuffer) *host.Client {
	h.t.Helper()
	bin, sum := buildPlugin(h.t)
	c, err := host.Start(context.Background(), host.Config{
		Name: name, Command: bin, Args: h.args(), Env: h.env(), SHA256: sum,
		Logger: plugintest.Logger(h.t, log),
	})
	if err != nil {
		h.t.Fatalf("starting the plugin: %v", err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

func (h *hsm) pkcs11Tool(args ...string) string {
	h.t.Helper()
	if _, err := exec.LookPath("pkcs11-tool"); err != nil {
		h.t.Fatalf("pkcs11-tool not found: %s", installHint)
	}
	out, err := exec.Command("pkcs11-tool", append([]string{"--module", h.lib}, args...)...).CombinedOutput()
	if err != nil {
		h.t.Fatalf("pkcs11-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginBin.path != "" {
		os.RemoveAll(filepath.Dir(pluginBin.path))
	}
	os.Exit(code)
}
