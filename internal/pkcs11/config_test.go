package pkcs11

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testDialect = &Dialect{Name: "pkcs11 test", Lib: "-lib", Slot: "-slot", TokenLabel: "-token-label", PIN: "-pin", MaxSessions: "-sessions"}

// Validate names the field to fix in the dialect's spelling, wraps
// ErrConfig and starts with the dialect's name.
func TestValidate(t *testing.T) {
	slot := uint(1)
	ok := Config{Lib: "/x.so", TokenLabel: "t", PIN: "p"}
	for _, c := range []Config{ok, {Lib: "/x.so", Slot: &slot, PINFile: "/pin"}, {Lib: "x.so", TokenLabel: "t", PIN: "p", MaxSessions: MaxMaxSessions}} {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%v): %v", c, err)
		}
	}
	cases := []struct {
		name string
		mut  func(*Config)
		want string // with testDialect
	}{
		{"no lib", func(c *Config) { c.Lib = "" }, "pkcs11 test: invalid configuration: the module path is required (-lib)"},
		{"no token", func(c *Config) { c.TokenLabel = "" }, "pkcs11 test: invalid configuration: one of -token-label and -slot is required"},
		{"both", func(c *Config) { c.Slot = &slot }, "pkcs11 test: invalid configuration: -token-label and -slot are exclusive; set one"},
		{"no pin", func(c *Config) { c.PIN = "" }, "pkcs11 test: invalid configuration: the user PIN is required (-pin)"},
		{"negative sessions", func(c *Config) { c.MaxSessions = -1 }, "pkcs11 test: invalid configuration: -sessions is -1, want 0 (default 8) to 1024"},
		{"too many sessions", func(c *Config) { c.MaxSessions = MaxMaxSessions + 1 }, "pkcs11 test: invalid configuration: -sessions is 1025"},
	}
	for _, tc := range cases {
		c := ok
		tc.mut(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), "pkcs11: invalid configuration: ") {
			t.Errorf("%s, default dialect: %v", tc.name, err)
		}
		c.Dialect = testDialect
		if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s:\n got  %v\n want %s", tc.name, err, tc.want)
		}
	}
}

func TestReadPIN(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for body, want := range map[string]string{"s3cret\n": "s3cret", "s3cret\r\n": "s3cret", "s3cret": "s3cret", "two\n\n": "two\n", " sp ": " sp "} {
		c := Config{PINFile: write("pin", body)}
		if err := c.ReadPIN(); err != nil || c.PIN != want {
			t.Errorf("PIN file %q: PIN %q, %v; want %q", body, c.PIN, err, want)
		}
	}
	for name, body := range map[string]string{"empty": "", "newline": "\n", "huge": strings.Repeat("x", MaxPINFile+1)} {
		c := Config{PINFile: write(name, body), Dialect: testDialect}
		err := c.ReadPIN()
		if !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), "pkcs11 test: ") || c.PIN != "" {
			t.Errorf("%s PIN file: %v (PIN %q)", name, err, c.PIN)
		}
	}
	c := Config{PINFile: filepath.Join(dir, "missing")}
	if err := c.ReadPIN(); !errors.Is(err, ErrConfig) {
		t.Errorf("missing PIN file: %v", err)
	}
	c = Config{PIN: "kept"}
	if err := c.ReadPIN(); err != nil || c.PIN != "kept" {
		t.Errorf("no PIN file: %q, %v", c.PIN, err)
	}
}

// No fmt verb prints the PIN, in a Config or inside another value.
func TestConfigHidesPIN(t *testing.T) {
	const pin = "Pin-3f9a7c21"
	slot := uint(7)
	for _, c := range []Config{{Lib: "/l.so", TokenLabel: "kr", PIN: pin}, {Lib: "/l.so", Slot: &slot, PIN: pin}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			for _, v := range []any{c, &c, []Config{c}, struct{ C Config }{c}} {
				if out := fmt.Sprintf(verb, v); strings.Contains(out, pin) || strings.Contains(strings.ToLower(out), fmt.Sprintf("%x", pin)) {
					t.Errorf("fmt %s shows the PIN: %s", verb, out)
				}
			}
		}
	}
	if got := (Config{Lib: "/l.so", Slot: &slot}).String(); got != `lib="/l.so" slot=7 pin=<empty>` {
		t.Errorf("String = %s", got)
	}
	if got := (Config{Lib: "/l.so", TokenLabel: "kr", PIN: pin}).String(); got != `lib="/l.so" token_label="kr" pin=<redacted>` {
		t.Errorf("String = %s", got)
	}
}

func TestResolveLib(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib.so")
	if err := os.WriteFile(lib, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.so")
	if err := os.Symlink(lib, link); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(lib)
	for _, p := range []string{lib, link, filepath.Join(dir, ".", "link.so")} {
		if got, err := resolveLib(p); err != nil || got != real {
			t.Errorf("resolveLib(%s) = %s, %v; want %s", p, got, err, real)
		}
	}
	if got, err := resolveLib("libsofthsm2.so"); err != nil || got != "libsofthsm2.so" {
		t.Errorf("a bare name is for the loader: %s, %v", got, err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "missing.so")} {
		if _, err := resolveLib(p); err == nil {
			t.Errorf("resolveLib(%s) succeeded", p)
		}
	}
}

// The IV guard refuses every length but 12, before anything reaches a
// token.
func TestCheckGCMIV(t *testing.T) {
	for _, n := range []int{0, 1, 8, 11, 13, 16, 32} {
		if err := CheckGCMIV(make([]byte, n)); err == nil {
			t.Errorf("CheckGCMIV accepted a %d-byte IV", n)
		}
		if m, p, err := gcmMechanism(make([]byte, n), nil); err == nil || m != nil || p != nil {
			t.Errorf("gcmMechanism accepted a %d-byte IV", n)
		}
	}
	if err := CheckGCMIV(nil); err == nil {
		t.Error("CheckGCMIV accepted a nil IV")
	}
	m, p, err := gcmMechanism(make([]byte, GCMIVSize), []byte("aad"))
	if err != nil || len(m) != 1 {
		t.Fatalf("gcmMechanism(12 bytes) = %v, %v", m, err)
	}
	p.Free()
}
