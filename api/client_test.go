package api

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestDefaultConfig(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want Config
	}{
		{"nothing set", nil, Config{Address: DefaultAddress, Timeout: DefaultTimeout}},
		{"vault variables", map[string]string{
			"VAULT_ADDR": "https://v:8200", "VAULT_TOKEN": "hvs.x", "VAULT_CACERT": "/ca.pem", "VAULT_SKIP_VERIFY": "1",
		}, Config{Address: "https://v:8200", Token: "hvs.x", CACert: "/ca.pem", TLSSkipVerify: true, Timeout: DefaultTimeout}},
		{"keyraft variables win", map[string]string{
			"VAULT_ADDR": "https://v:8200", "KEYRAFT_ADDR": "https://k:8200",
			"VAULT_TOKEN": "vault", "KEYRAFT_TOKEN": " keyraft\n",
			"VAULT_SKIP_VERIFY": "true", "KEYRAFT_SKIP_VERIFY": "false",
		}, Config{Address: "https://k:8200", Token: "keyraft", Timeout: DefaultTimeout}},
		{"unparsable skip verify keeps verification", map[string]string{"KEYRAFT_SKIP_VERIFY": "yes"},
			Config{Address: DefaultAddress, Timeout: DefaultTimeout}},
	}
	for _, tt := range tests {
		if got := DefaultConfig(env(tt.vars)); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		c    Config
		want string
	}{
		{Config{Address: ""}, `invalid address "": want a URL like https://127.0.0.1:8200`},
		{Config{Address: "127.0.0.1:8200"}, `invalid address "127.0.0.1:8200": want a URL like https://127.0.0.1:8200`},
		{Config{Address: "tcp://127.0.0.1:8200"}, `invalid address "tcp://127.0.0.1:8200": want a URL like https://127.0.0.1:8200`},
		{Config{Address: "http://"}, `invalid address "http://": want a URL like https://127.0.0.1:8200`},
		{Config{Address: "http://a:b@h:1"}, `invalid address "http://a:b@h:1": want a URL like https://127.0.0.1:8200`},
		{Config{Address: "http://h:1", Token: "a\nb"}, "invalid token: it contains a line break"},
		{Config{Address: "https://h:1", CACert: filepath.Join(dir, "missing.pem")}, "reading the CA certificate: open " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{Config{Address: "https://h:1", CACert: notPEM}, "no PEM certificate in " + notPEM},
	}
	for _, tt := range tests {
		_, err := New(tt.c)
		if err == nil || err.Error() != tt.want {
			t.Errorf("New(%+v): got %v, want %s", tt.c, err, tt.want)
		}
	}
}

func TestAddress(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8200":     "http://127.0.0.1:8200",
		"http://127.0.0.1:8200/":    "http://127.0.0.1:8200",
		"https://proxy/kms":         "https://proxy/kms",
		"https://proxy/kms/":        "https://proxy/kms",
		"https://[::1]:8200":        "https://[::1]:8200",
		"https://h:8200/a%2Fb/path": "https://h:8200/a%2Fb/path",
	} {
		c, err := New(Config{Address: in})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Address(); got != want {
			t.Errorf("Address of %s = %s, want %s", in, got, want)
		}
	}
}

// closedAddr returns the URL of a 127.0.0.1 port that nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestConnectionRefused(t *testing.T) {
	c, err := New(Config{Address: closedAddr(t), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := map[string]func() error{
		"SealStatus": func() error { _, err := c.SealStatus(ctx); return err },
		"Health":     func() error { _, err := c.Health(ctx); return err },
		"ListKeys":   func() error { _, err := c.ListKeys(ctx); return err },
		"Encrypt":    func() error { _, err := c.Encrypt(ctx, "k", EncryptRequest{}); return err },
		"Do":         func() error { return c.Do(ctx, "LIST", "transit/keys", nil, nil) },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s: %v, want connection refused", name, err)
		}
		var re *ResponseError
		if errors.As(err, &re) {
			t.Errorf("%s: a transport error is a ResponseError", name)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	c, err := New(Config{Address: closedAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.SealStatus(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestResponseError(t *testing.T) {
	tests := []struct {
		e    ResponseError
		want string
	}{
		{ResponseError{StatusCode: 403, Errors: []string{"permission denied"}}, "permission denied (status 403)"},
		{ResponseError{StatusCode: 400, Errors: []string{"missing plaintext", "bad context"}}, "missing plaintext; bad context (status 400)"},
		{ResponseError{StatusCode: 503}, "service unavailable (status 503)"},
		{ResponseError{StatusCode: 599}, "unexpected response (status 599)"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	for body, want := range map[string]string{
		`{"errors":["sealed"]}`:        "sealed (status 503)",
		`{"errors":[" ", "x\n"]}`:      "x (status 503)",
		`<html>bad gateway</html>`:     "service unavailable (status 503)",
		`{"errors":"not a list"}`:      "service unavailable (status 503)",
		``:                             "service unavailable (status 503)",
		`{"errors":[],"data":{"a":1}}`: "service unavailable (status 503)",
	} {
		if got := responseError(503, []byte(body)).Error(); got != want {
			t.Errorf("body %q: got %q, want %q", body, got, want)
		}
	}
}

func TestKeyNames(t *testing.T) {
	c, err := New(Config{Address: closedAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, want := range map[string]string{"": "a key name is required", "..": `invalid key name ".."`, ".": `invalid key name "."`} {
		if _, err := c.ReadKey(ctx, name); err == nil || err.Error() != want {
			t.Errorf("ReadKey(%q): %v, want %s", name, err, want)
		}
		if err := c.DeleteKey(ctx, name); err == nil || err.Error() != want {
			t.Errorf("DeleteKey(%q): %v, want %s", name, err, want)
		}
	}
	if p, _ := keyPath("transit/keys/", "a/b?c#d"); !strings.HasSuffix(p, "/a%2Fb%3Fc%23d") {
		t.Errorf("keyPath does not escape: %s", p)
	}
}
