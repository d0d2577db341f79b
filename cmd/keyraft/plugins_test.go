package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/keyraft/keyraft/config"
)

func TestPKCS11PluginEnv(t *testing.T) {
	slot := uint(3)
	sealed := &config.Config{Seal: config.Seal{Type: "pkcs11", PKCS11: &config.PKCS11Seal{Lib: "/hsm.so", TokenLabel: "kms"}}}
	slotSeal := &config.Config{Seal: config.Seal{Type: "pkcs11", PKCS11: &config.PKCS11Seal{Lib: "/hsm.so", Slot: &slot, PINFile: "/etc/pin"}}}
	shamir := &config.Config{Seal: config.Seal{Type: "shamir"}}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cases := []struct {
		name string
		cfg  *config.Config
		env  map[string]string
		want []string
	}{
		{"nothing configured", shamir, nil, nil},
		{"the node's own settings", shamir, map[string]string{"KEYRAFT_HSM_LIB": "/x.so", "KEYRAFT_HSM_TOKEN_LABEL": "t", "KEYRAFT_HSM_PIN": "1", "HOME": "/root"},
			[]string{"KEYRAFT_HSM_LIB=/x.so", "KEYRAFT_HSM_TOKEN_LABEL=t", "KEYRAFT_HSM_PIN=1"}},
		{"the seal's token", sealed, map[string]string{"KEYRAFT_HSM_PIN": "1234", "SOFTHSM2_CONF": "/c"},
			[]string{"SOFTHSM2_CONF=/c", "KEYRAFT_HSM_LIB=/hsm.so", "KEYRAFT_HSM_TOKEN_LABEL=kms", "KEYRAFT_HSM_PIN=1234"}},
		{"the seal's slot and PIN file", slotSeal, nil,
			[]string{"KEYRAFT_HSM_LIB=/hsm.so", "KEYRAFT_HSM_SLOT=3", "KEYRAFT_HSM_PIN_FILE=/etc/pin"}},
		{"own settings win over the seal's", sealed, map[string]string{"KEYRAFT_HSM_LIB": "/other.so"},
			[]string{"KEYRAFT_HSM_LIB=/other.so"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := pkcs11PluginEnv(c.cfg, env(c.env))
			if !slices.Equal(got, c.want) {
				t.Fatalf("env = %q, want %q", got, c.want)
			}
			for _, kv := range got {
				if strings.HasPrefix(kv, "HOME=") {
					t.Fatal("the node's whole environment leaked to the plugin")
				}
			}
		})
	}
}

func TestUnavailableHint(t *testing.T) {
	cases := map[string]string{
		"Code: 503. Errors: * keyraft is sealed":                       "keyraft operator unseal",
		`Code: 503. Errors: * crypto backend "soft": plugin crashed`:   "keyraft plugin info",
		"Code: 503. Errors: * no leader is available to accept writes": "electing a leader",
		"Code: 503. Errors: * request timed out":                       "keyraft status",
	}
	for msg, want := range cases {
		if got := unavailableHint(msg); !strings.Contains(got, want) {
			t.Errorf("hint for %q = %q, want it to mention %q", msg, got, want)
		}
	}
}

// TestIntegrationPluginErrors: a crypto plugin that cannot start says why
// in the error (not only in the server's log), and 'plugin reload' of it
// fails with that reason instead of claiming success.
func TestIntegrationPluginErrors(t *testing.T) {
	if os.Getenv("KEYRAFT_HSM_LIB") != "" {
		t.Skip("KEYRAFT_HSM_LIB is set: the pkcs11 plugin may start")
	}
	t.Parallel()
	s := startDevServer(t)
	// The dev server has no HSM: its pkcs11 plugin exits at once.
	const why = "the plugin exited before its handshake: configuration: pkcs11 plugin: invalid configuration: the module path is required"
	_, errOut, code := s.kr(t, nil, nil, "keys", "create", "-backend=pkcs11", "hsm")
	if code != 1 || strings.Contains(errOut, "log lines above") || strings.Count(errOut, `crypto backend "pkcs11"`) != 1 {
		t.Errorf("keys create on a plugin that cannot start: exit %d, %q", code, errOut)
	}
	checkErrorLines(t, "keys create on a plugin that cannot start", errOut, why, "fix that, then 'keyraft plugin reload pkcs11'")
	_, errOut, code = s.kr(t, nil, nil, "plugin", "reload", "pkcs11")
	if code != 1 {
		t.Errorf("plugin reload of a plugin that cannot start: exit %d, %q", code, errOut)
	}
	checkErrorLines(t, "plugin reload of a plugin that cannot start", errOut, `plugin "pkcs11" was reloaded in the catalog, but it does not start on this node`, "keyraft plugin info pkcs11")
	if !strings.Contains(errOut, why) {
		t.Errorf("plugin reload does not say why: %q", errOut)
	}
	if out := string(s.ok(t, nil, "plugin", "reload", "soft")); !strings.HasPrefix(out, "Success! Reloaded plugin soft") {
		t.Errorf("plugin reload soft: %q", out)
	}
	s.ok(t, nil, "keys", "create", "k")
	s.ok(t, []byte("x"), "encrypt", "k")
}
