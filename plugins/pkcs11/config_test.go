package pkcs11

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseConfig(t *testing.T) {
	base := map[string]string{EnvPIN: "1234"}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string // Config.String, or the start of the error
	}{
		{"args", []string{"-lib", "/l.so", "-token-label", "kr"}, base,
			`pkcs11.Config{lib="/l.so" token_label="kr" pin=<redacted> pin_file="" max_sessions=8}`},
		{"env only", nil, map[string]string{EnvLib: "/e.so", EnvSlot: "3", EnvPIN: "1"},
			`pkcs11.Config{lib="/e.so" slot=3 pin=<redacted> pin_file="" max_sessions=8}`},
		{"args win over env", []string{"-lib", "/a.so", "-max-sessions", "2"}, map[string]string{EnvLib: "/e.so", EnvTokenLabel: "t", EnvPIN: "1"},
			`pkcs11.Config{lib="/a.so" token_label="t" pin=<redacted> pin_file="" max_sessions=2}`},
		{"pin file instead of env", []string{"-lib", "/l.so", "-slot", "0", "-pin-file", "/p"}, base,
			`pkcs11.Config{lib="/l.so" slot=0 pin=<empty> pin_file="/p" max_sessions=8}`},
		{"no lib", []string{"-token-label", "kr"}, base, "pkcs11 plugin: invalid configuration: the module path"},
		{"no token", []string{"-lib", "/l.so"}, base, "pkcs11 plugin: invalid configuration: one of -token-label"},
		{"both", []string{"-lib", "/l.so", "-slot", "1", "-token-label", "x"}, base, "pkcs11 plugin: invalid configuration: -token-label and -slot"},
		{"bad slot", []string{"-lib", "/l.so", "-slot", "one"}, base, "pkcs11 plugin: invalid configuration: slot \"one\""},
		{"no pin", []string{"-lib", "/l.so", "-slot", "1"}, nil, "pkcs11 plugin: invalid configuration: the user PIN"},
		{"sessions", []string{"-lib", "/l.so", "-slot", "1", "-max-sessions", "0"}, base, "pkcs11 plugin: invalid configuration: -max-sessions is 0"},
		{"unknown flag", []string{"-pin", "1234"}, base, "pkcs11 plugin: invalid configuration: flag provided but not defined"},
		{"extra arg", []string{"-lib", "/l.so", "-slot", "1", "extra"}, base, "pkcs11 plugin: invalid configuration: unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(tc.args, env(tc.env))
			got := ""
			if err != nil {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("error does not wrap ErrConfig: %v", err)
				}
				got = err.Error()
			} else {
				got = c.String()
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestReadPIN: the plugin reads its PIN file through internal/pkcs11
// (tested there); errors are the plugin's.
func TestReadPIN(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{PINFile: p}
	if err := c.ReadPIN(); err != nil || c.PIN != "s3cret" {
		t.Fatalf("ReadPIN: %q, %v", c.PIN, err)
	}
	c = Config{PINFile: p + ".missing"}
	if err := c.ReadPIN(); !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), "pkcs11 plugin: invalid configuration: PIN file") {
		t.Errorf("missing PIN file: %v", err)
	}
}

func TestParseHandle(t *testing.T) {
	id := bytes.Repeat([]byte{9}, idSize)
	for _, kt := range []keyType{aesType, edType, hmacType} {
		got, gid, err := parseHandle(makeHandle(kt, id))
		if err != nil || got.code != kt.code || !bytes.Equal(gid, id) {
			t.Fatalf("round trip of a %s handle: %v %v", kt.name, got.name, err)
		}
	}
	for _, h := range [][]byte{nil, {1}, append([]byte{2, 1}, id...), append([]byte{1, 4}, id...), append([]byte{1, 1}, id[1:]...), append(makeHandle(aesType, id), 0)} {
		if _, _, err := parseHandle(h); !errors.Is(err, ErrHandle) {
			t.Errorf("parseHandle(%x): %v", h, err)
		}
	}
}

// FuzzParseConfig: any argument list parses or is refused with
// ErrConfig; it never panics and never puts the PIN in an error or in
// the Config's printed form.
func FuzzParseConfig(f *testing.F) {
	f.Add("-lib\x00/l.so\x00-token-label\x00kr", "pin")
	f.Add("-slot\x0018446744073709551616", "1")
	f.Add("-max-sessions\x00-1\x00-lib\x00x", "")
	f.Add("--lib=/x\x00-slot=2\x00-pin-file\x00/p", "PINPIN")
	f.Fuzz(func(t *testing.T, joined, pin string) {
		args := strings.Split(joined, "\x00")
		c, err := ParseConfig(args, env(map[string]string{EnvPIN: pin}))
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error without ErrConfig: %v", err)
			}
			if len(pin) >= 4 && strings.Contains(err.Error(), pin) && !strings.Contains(joined, pin) {
				t.Fatalf("error shows the PIN: %v", err)
			}
			return
		}
		if c.validate() != nil {
			t.Fatalf("ParseConfig returned an invalid config %v", c)
		}
		if s := fmt.Sprintf("%v %+v %#v %s", c, c, c, c); len(pin) >= 4 && strings.Contains(s, pin) && !strings.Contains(joined, pin) {
			t.Fatalf("Config prints the PIN: %s", s)
		}
	})
}

// FuzzParseHandle: a handle parses to a known type and a 16-byte id, or
// is refused with ErrHandle; a parsed handle rebuilds to the same bytes.
func FuzzParseHandle(f *testing.F) {
	f.Add(makeHandle(aesType, bytes.Repeat([]byte{1}, idSize)))
	f.Add(makeHandle(hmacType, bytes.Repeat([]byte{2}, idSize)))
	f.Add([]byte{1, 9, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, h []byte) {
		kt, id, err := parseHandle(h)
		if err != nil {
			if !errors.Is(err, ErrHandle) {
				t.Fatalf("error without ErrHandle: %v", err)
			}
			return
		}
		if len(id) != idSize || !bytes.Equal(makeHandle(kt, id), h) {
			t.Fatalf("handle %x parsed to %s %x", h, kt.name, id)
		}
	})
}

// FuzzEdPoint: a token's CKA_EC_POINT decodes to 32 bytes or is refused.
func FuzzEdPoint(f *testing.F) {
	f.Add(append([]byte{0x04, 32}, bytes.Repeat([]byte{1}, 32)...))
	f.Add(bytes.Repeat([]byte{2}, 32))
	f.Add([]byte{0x04, 33, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		p, err := edPoint(v)
		if err == nil && len(p) != 32 {
			t.Fatalf("edPoint(%x) = %d bytes", v, len(p))
		}
	})
}

func TestNodeEnv(t *testing.T) {
	got := NodeEnv([]string{"PATH=/bin", "KEYRAFT_HSM_PIN=1", "SOFTHSM2_CONF=/c", "SOFTHSM2_CONFX=/x", "KEYRAFT_TOKEN=t", "KEYRAFT_HSM_LIB=/l.so"})
	if want := []string{"KEYRAFT_HSM_PIN=1", "SOFTHSM2_CONF=/c", "KEYRAFT_HSM_LIB=/l.so"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("NodeEnv = %q, want %q", got, want)
	}
}
