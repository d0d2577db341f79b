package main

import (
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
