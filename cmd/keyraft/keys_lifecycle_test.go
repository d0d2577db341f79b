package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// A key's whole life from the CLI, against a real dev server: create,
// use, rotate, disable, enable, compromise, schedule destruction, cancel,
// destroy; every step shows in the key's history.
func TestKeyLifecycleCLI(t *testing.T) {
	t.Setenv(unsafeMinPendingWindowEnv, "1s") // so the destruction completes within the test
	s := startDevServer(t)
	fail := func(wantErr string, args ...string) {
		t.Helper()
		_, errOut, code := s.kr(t, nil, nil, args...)
		if code == 0 || !strings.Contains(errOut, wantErr) || !strings.HasPrefix(errOut, "error: ") {
			t.Fatalf("keyraft %s: exit %d, stderr %q; want an error containing %q", strings.Join(args, " "), code, errOut, wantErr)
		}
	}
	// Once compromised, every answer about the key carries the server's
	// warning, which the CLI prints on stderr.
	var warnings []string
	ok := func(stdin []byte, args ...string) []byte {
		t.Helper()
		return s.okWarned(t, stdin, warnings, args...)
	}
	state := func() (string, map[string]any) {
		t.Helper()
		var k map[string]any
		if err := json.Unmarshal(ok(nil, "keys", "read", "-format=json", "life"), &k); err != nil {
			t.Fatal(err)
		}
		return k["state"].(string), k
	}
	s.ok(t, nil, "keys", "create", "-exportable", "life")
	ct := strings.TrimSpace(string(s.ok(t, []byte("secret"), "encrypt", "life")))
	s.ok(t, nil, "keys", "rotate", "life")
	s.ok(t, nil, "keys", "disable", "life")
	if st, _ := state(); st != "disabled" {
		t.Fatalf("state %s", st)
	}
	fail(`key "life" is disabled: encrypt is not allowed (enable it with: keyraft keys enable life)`, "encrypt", "life")
	s.ok(t, nil, "keys", "enable", "life")
	warnings = []string{`key "life" is compromised: use it only to decrypt or verify existing data, and move that data to a new key`}
	ok(nil, "keys", "compromise", "-reason=key file found on a build server", "life")
	if out := string(ok([]byte(ct), "decrypt", "life")); out != "secret" {
		t.Fatalf("decrypt with a compromised key: %q", out)
	}
	var dec map[string]any
	if err := json.Unmarshal(ok([]byte(ct), "decrypt", "-format=json", "life"), &dec); err != nil || dec["plaintext"] != "c2VjcmV0" {
		t.Fatalf("decrypt -format=json with a compromised key: %v %v", dec, err)
	}
	fail("compromised: encrypt", "encrypt", "life")
	_, errOut, code := s.kr(t, nil, nil, "keys", "destroy", "life")
	if code == 0 || !strings.Contains(errOut, "hint: allow it first: keyraft keys config -deletion-allowed=true life") {
		t.Fatalf("destroy without deletion_allowed: %d %q", code, errOut)
	}
	fail("pending_window must be between", "keys", "destroy", "-pending-window=800h", "life")
	ok(nil, "keys", "config", "-deletion-allowed=true", "life")
	ok(nil, "keys", "destroy", "-pending-window=1h", "life")
	if st, k := state(); st != "pending-destruction" || k["destroy_time"] == nil {
		t.Fatalf("after destroy: %s %v", st, k["destroy_time"])
	}
	ok(nil, "keys", "cancel-destroy", "life")
	if st, _ := state(); st != "compromised" {
		t.Fatalf("after cancel: %s", st)
	}
	ok(nil, "keys", "destroy", "-pending-window=1s", "life")
	testwait.Within(t, time.Minute, "the key destroyed after its 1 s window", func() bool {
		st, _ := state()
		return st == "destroyed"
	})
	fail(`key "life" is destroyed`, "encrypt", "life")
	fail(`key "life" is destroyed`, "keys", "enable", "life")
	out := string(ok(nil, "keys", "read", "life"))
	for _, re := range []string{`(?m)^state\s+destroyed$`, `(?m)^compromised\s+true$`, `(?m)^destroy_time\s+\d{4}-`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("keys read: no line matching %s in\n%s", re, out)
		}
	}
	for _, want := range []string{"History",
		"create v1", "rotate v2", "disable", "enable", "compromise", "key file found on a build server",
		"schedule-destroy", "cancel-destroy", "destroy "} {
		if !strings.Contains(out, want) {
			t.Errorf("keys read: no %q in\n%s", want, out)
		}
	}
}

// A key created pre-active refuses use until enabled; config moves its
// activation time; create keeps the other options it is given.
func TestPreActiveKeyCLI(t *testing.T) {
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "-type=chacha20-poly1305", "-exportable", "-activation-time=2099-01-01T00:00:00Z", "-auto-rotate-share=0.25", "later")
	var k map[string]any
	if err := json.Unmarshal(s.ok(t, nil, "keys", "read", "-format=json", "later"), &k); err != nil {
		t.Fatal(err)
	}
	if k["state"] != "pre-active" || k["activation_time"] != "2099-01-01T00:00:00Z" || k["type"] != "chacha20-poly1305" ||
		k["exportable"] != true || k["auto_rotate_share"] != 0.25 {
		t.Fatalf("created key: %v", k)
	}
	_, errOut, code := s.kr(t, nil, []byte("x"), "encrypt", "later")
	if code == 0 || !strings.Contains(errOut, "keyraft keys enable later") {
		t.Fatalf("encrypt with a pre-active key: %d %q", code, errOut)
	}
	s.ok(t, nil, "keys", "config", "-activation-time=2098-01-01T00:00:00Z", "later")
	_, errOut, code = s.kr(t, nil, nil, "keys", "create", "-activation-time=tomorrow", "x")
	if code != 2 || !strings.Contains(errOut, "RFC 3339") {
		t.Fatalf("bad -activation-time: %d %q", code, errOut)
	}
	s.ok(t, nil, "keys", "enable", "later")
	s.ok(t, []byte("x"), "encrypt", "later")
	out := string(s.ok(t, nil, "keys", "read", "later"))
	if !regexp.MustCompile(`(?m)^state\s+active$`).MatchString(out) || !strings.Contains(out, "set-activation-time") || !strings.Contains(out, "activate") {
		t.Fatalf("keys read after enable:\n%s", out)
	}
}
