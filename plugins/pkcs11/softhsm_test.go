package pkcs11

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyraft/keyraft/internal/pkcs11/softhsm"
	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/internal/plugintest"
)

// These tests run against a real SoftHSM2 token in a temporary
// directory (internal/pkcs11/softhsm). They never skip: without SoftHSM2
// they fail and say how to install it.

const (
	testPIN   = "1234"
	testToken = "keyraft"
)

// hsm is a SoftHSM2 token directory for one test, with one token
// labelled testToken (user PIN testPIN). SOFTHSM2_CONF points at it for
// the rest of the test, for this process and (through the environment)
// for plugin processes it starts.
type hsm struct {
	*softhsm.HSM
	t testing.TB
}

func newHSM(t testing.TB) *hsm {
	t.Helper()
	h := &hsm{HSM: softhsm.New(t), t: t}
	h.Token(testToken, testPIN)
	return h
}

func (h *hsm) config() Config {
	return Config{Lib: h.Lib, TokenLabel: testToken, PIN: testPIN}
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
func (h *hsm) args() []string { return []string{"-lib", h.Lib, "-token-label", testToken} }

func (h *hsm) env() []string {
	return []string{"SOFTHSM2_CONF=" + h.Conf, EnvPIN + "=" + testPIN}
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

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginBin.path != "" {
		os.RemoveAll(filepath.Dir(pluginBin.path))
	}
	os.Exit(code)
}
