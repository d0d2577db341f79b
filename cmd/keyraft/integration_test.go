package main

// Integration tests: the CLI against a real server, both run in this
// process through run(), the server on a 127.0.0.1 port the OS picks.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testbuf"
)

// syncBuffer is a bytes.Buffer that a running server may write while the
// test reads it.
type syncBuffer = testbuf.Buffer

// devServer is 'keyraft server -dev' running in this process.
type devServer struct {
	addr, token, unsealKey string
}

var (
	bannerAddrLine   = regexp.MustCompile(`export KEYRAFT_ADDR='([^']+)'`)
	bannerUnsealLine = regexp.MustCompile(`(?m)^Unseal Key: (\S+)$`)
)

// startDevServer runs the server command in a goroutine until the test
// ends, and waits for its banner (with a deadline). The server must stop
// with exit code 0 when its context is cancelled.
func startDevServer(t *testing.T) *devServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	exited := make(chan struct{})
	var code int
	go func() {
		defer close(exited)
		code = run(ctx, []string{"server", "-dev", "-dev-root-token-id=root", "-dev-listen-address=127.0.0.1:0"},
			nil, stdout, stderr, func(string) string { return "" })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
			if code != 0 {
				t.Errorf("server exit code %d after cancel, want 0", code)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop within 30s of cancel")
		}
		if t.Failed() {
			t.Logf("server stdout:\n%s\nserver stderr:\n%s", stdout, stderr)
		}
	})

	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		out := stdout.String()
		a, u := bannerAddrLine.FindStringSubmatch(out), bannerUnsealLine.FindStringSubmatch(out)
		if a != nil && u != nil {
			return &devServer{addr: a[1], token: "root", unsealKey: u[1]}
		}
		select {
		case <-exited:
			t.Fatalf("server exited with code %d before its banner", code)
		case <-deadline.C:
			t.Fatal("no banner from the dev server within 60s")
		case <-tick.C:
		}
	}
}

// kr runs the CLI with KEYRAFT_ADDR and KEYRAFT_TOKEN set for s (vars
// override them) and returns stdout, stderr and the exit code.
func (s *devServer) kr(t *testing.T, vars map[string]string, stdin []byte, args ...string) ([]byte, string, int) {
	t.Helper()
	env := map[string]string{"KEYRAFT_ADDR": s.addr, "KEYRAFT_TOKEN": s.token}
	for k, v := range vars {
		env[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, bytes.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	return out.Bytes(), errOut.String(), code
}

// ok runs the CLI and fails the test unless it exits 0 with nothing on
// stderr; it returns stdout.
func (s *devServer) ok(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	out, errOut, code := s.kr(t, nil, stdin, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("keyraft %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

// okWarned runs the CLI and fails the test unless it exits 0 with
// exactly the server warnings given on stderr, one "warning:" line each;
// it returns stdout.
func (s *devServer) okWarned(t *testing.T, stdin []byte, warnings []string, args ...string) []byte {
	t.Helper()
	out, errOut, code := s.kr(t, nil, stdin, args...)
	want := ""
	for _, w := range warnings {
		want += "warning: " + w + "\n"
	}
	if code != 0 || errOut != want {
		t.Fatalf("keyraft %s: exit %d, stderr %q; want exit 0 and %q", strings.Join(args, " "), code, errOut, want)
	}
	return out
}

// readKeyJSON returns 'keys read -format=json NAME' decoded.
func (s *devServer) readKeyJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	var k map[string]any
	if err := json.Unmarshal(s.ok(t, nil, "keys", "read", "-format=json", name), &k); err != nil {
		t.Fatalf("keys read -format=json: %v", err)
	}
	return k
}

// checkErrorLines checks that stderr is one "error:" line containing
// wantErr, then, when wantHint is not "", one "hint:" line containing it.
func checkErrorLines(t *testing.T, what, stderr, wantErr, wantHint string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	want := 1
	if wantHint != "" {
		want = 2
	}
	switch {
	case len(lines) != want:
		t.Errorf("%s: stderr has %d lines, want %d: %q", what, len(lines), want, stderr)
	case !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], wantErr):
		t.Errorf("%s: first line %q, want an error: line with %q", what, lines[0], wantErr)
	case wantHint != "" && (!strings.HasPrefix(lines[1], "hint: ") || !strings.Contains(lines[1], wantHint)):
		t.Errorf("%s: second line %q, want a hint: line with %q", what, lines[1], wantHint)
	}
}

func TestIntegrationKeysAndSignatures(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)

	if out := s.ok(t, nil, "status"); !regexp.MustCompile(`(?m)^Sealed\s+false$`).Match(out) {
		t.Errorf("status of an unsealed server:\n%s", out)
	}
	if out := string(s.ok(t, nil, "keys", "create", "-type=ed25519", "signer")); out != "Success! Created key signer.\n" {
		t.Errorf("keys create: %q", out)
	}
	// Creating a key that exists changes nothing: the server's warning is
	// printed, and the CLI does not claim to have created it.
	s.ok(t, nil, "keys", "create", "dk")
	exists := []string{"key already exists; its settings were not changed"}
	if out := string(s.okWarned(t, nil, exists, "keys", "create", "-type=ed25519", "dk")); out != "Key dk exists, unchanged.\n" {
		t.Errorf("keys create of an existing key: %q", out)
	}
	if k := s.readKeyJSON(t, "dk"); k["type"] != "aes256-gcm96" {
		t.Errorf("the existing key changed type: %v", k["type"])
	}
	var again map[string]any
	if err := json.Unmarshal(s.okWarned(t, nil, exists, "keys", "create", "-format=json", "dk"), &again); err != nil || again["name"] != "dk" {
		t.Errorf("keys create -format=json of an existing key: %v %v", again, err)
	}
	if out := string(s.ok(t, nil, "keys", "list")); !regexp.MustCompile(`(?m)^signer$`).MatchString(out) {
		t.Errorf("keys list:\n%s", out)
	}
	out := string(s.ok(t, nil, "keys", "read", "signer"))
	for _, re := range []string{`(?m)^type\s+ed25519$`, `(?m)^latest_version\s+1$`, `(?m)^keys/1\s+\S+`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("keys read: no line matching %s in\n%s", re, out)
		}
	}

	msg := []byte("sign me\x00please")
	sig1 := strings.TrimSpace(string(s.ok(t, msg, "sign", "signer")))
	if !strings.HasPrefix(sig1, "vault:v1:") {
		t.Fatalf("sign: %q", sig1)
	}
	if out := string(s.ok(t, nil, "keys", "rotate", "signer")); out != "Success! Rotated key signer.\n" {
		t.Errorf("keys rotate: %q", out)
	}
	if k := s.readKeyJSON(t, "signer"); k["latest_version"] != 2.0 {
		t.Errorf("latest_version after rotate: %v", k["latest_version"])
	}
	// Sign from a file this time.
	in := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(in, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	sig2 := strings.TrimSpace(string(s.ok(t, nil, "sign", "-in", in, "signer")))
	if !strings.HasPrefix(sig2, "vault:v2:") {
		t.Fatalf("sign after rotate: %q", sig2)
	}
	if out := string(s.ok(t, msg, "verify", "-signature="+sig2, "signer")); out != "valid\n" {
		t.Errorf("verify: %q", out)
	}
	if out := string(s.ok(t, nil, "verify", "-in", in, "-signature="+sig1, "signer")); out != "valid\n" {
		t.Errorf("verify of the v1 signature: %q", out)
	}
	tampered := append([]byte{}, msg...)
	tampered[0] ^= 1
	out2, errOut, code := s.kr(t, nil, tampered, "verify", "-signature="+sig2, "signer")
	if code != 1 || len(out2) != 0 || errOut != "error: signature is not valid\n" {
		t.Errorf("verify of tampered input: exit %d, stdout %q, stderr %q; want exit 1 and 'error: signature is not valid'", code, out2, errOut)
	}

	if out := string(s.ok(t, nil, "keys", "config", "-min-decryption-version=2", "signer")); out != "Success! Updated key signer.\n" {
		t.Errorf("keys config: %q", out)
	}
	if k := s.readKeyJSON(t, "signer"); k["min_decryption_version"] != 2.0 {
		t.Errorf("min_decryption_version after keys config: %v", k["min_decryption_version"])
	}
	// The v1 signature is now below min_decryption_version.
	_, errOut, code = s.kr(t, nil, msg, "verify", "-signature="+sig1, "signer")
	if code != 1 {
		t.Errorf("verify of a v1 signature below min_decryption_version: exit %d, stderr %q", code, errOut)
	}
	checkErrorLines(t, "verify below min_decryption_version", errOut, "too old", "")
	s.ok(t, msg, "verify", "-signature="+sig2, "signer")

	// Deletion is refused until allowed.
	_, errOut, code = s.kr(t, nil, nil, "keys", "delete", "signer")
	if code != 1 {
		t.Errorf("keys delete without deletion_allowed: exit %d", code)
	}
	checkErrorLines(t, "keys delete refused", errOut, "deletion is not allowed", "keys config -deletion-allowed=true signer")
	s.ok(t, nil, "keys", "config", "-deletion-allowed=true", "signer")
	if out := string(s.ok(t, nil, "keys", "delete", "signer")); out != "Success! Deleted key signer.\n" {
		t.Errorf("keys delete: %q", out)
	}
	_, errOut, code = s.kr(t, nil, nil, "keys", "read", "signer")
	if code != 1 {
		t.Errorf("keys read of a deleted key: exit %d", code)
	}
	checkErrorLines(t, "keys read of a deleted key", errOut, "not found", "")
}

// TestIntegrationKeysListEmpty: a server without keys lists none, as Vault
// does (its 404 for an empty LIST is not an error to the CLI).
func TestIntegrationKeysListEmpty(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	check := func(when string) {
		t.Helper()
		out, errOut, code := s.kr(t, nil, nil, "keys", "list")
		if code != 0 || len(out) != 0 || errOut != "No keys.\n" {
			t.Errorf("keys list %s: exit %d, stdout %q, stderr %q; want exit 0 and 'No keys.'", when, code, out, errOut)
		}
	}
	check("on a fresh server")
	s.ok(t, nil, "keys", "create", "short-lived")
	s.ok(t, nil, "keys", "config", "-deletion-allowed=true", "short-lived")
	s.ok(t, nil, "keys", "delete", "short-lived")
	check("after the only key was deleted")
}

func TestIntegrationEncryptDecrypt(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "data")

	random := make([]byte, 4096)
	rand.Read(random)
	inputs := map[string][]byte{
		"empty":            {},
		"one NUL":          {0},
		"NULs and 0xff":    {0, 0, 'a', 0, 0xff, 0xfe, 0, '\n'},
		"trailing newline": []byte("hello\n"),
		"random 4 KiB":     append(append([]byte{0}, random...), 0),
	}
	dir := t.TempDir()
	for name, pt := range inputs {
		// stdin → stdout.
		ct := s.ok(t, pt, "encrypt", "data")
		if !bytes.HasPrefix(ct, []byte("vault:v1:")) || !bytes.HasSuffix(ct, []byte("\n")) || bytes.Count(ct, []byte("\n")) != 1 {
			t.Errorf("%s: encrypt printed %q, want one vault:v1: line", name, ct)
			continue
		}
		if got := s.ok(t, ct, "decrypt", "data"); !bytes.Equal(got, pt) {
			t.Errorf("%s: decrypt from stdin gave %q, want %q", name, got, pt)
		}
		// -in FILE → -out FILE.
		ptFile, ctFile, outFile := filepath.Join(dir, "pt"), filepath.Join(dir, "ct"), filepath.Join(dir, "out")
		if err := os.WriteFile(ptFile, pt, 0o600); err != nil {
			t.Fatal(err)
		}
		ct2 := s.ok(t, nil, "encrypt", "-in", ptFile, "data")
		if bytes.Equal(ct, ct2) {
			t.Errorf("%s: two encryptions gave the same ciphertext", name)
		}
		if err := os.WriteFile(ctFile, ct2, 0o600); err != nil {
			t.Fatal(err)
		}
		if out := s.ok(t, nil, "decrypt", "-in", ctFile, "-out", outFile, "data"); len(out) != 0 {
			t.Errorf("%s: decrypt -out printed %q", name, out)
		}
		got, err := os.ReadFile(outFile)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s: decrypt -in -out wrote %q (%v), want %q", name, got, err, pt)
		}
		if fi, err := os.Stat(outFile); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: -out file mode %v, want 0600", name, fi.Mode().Perm())
		}
		os.Remove(outFile)
		// JSON output carries base64.
		var j map[string]string
		if err := json.Unmarshal(s.ok(t, ct, "decrypt", "-format=json", "data"), &j); err != nil {
			t.Fatalf("%s: decrypt -format=json: %v", name, err)
		}
		if j["plaintext"] != base64.StdEncoding.EncodeToString(pt) {
			t.Errorf("%s: decrypt -format=json: %q", name, j["plaintext"])
		}
	}

	// A tampered ciphertext fails with one error line.
	ct := s.ok(t, []byte("x"), "encrypt", "data")
	bad := []byte(strings.TrimSpace(string(ct)))
	bad[len(bad)-2] ^= 1
	out, errOut, code := s.kr(t, nil, bad, "decrypt", "data")
	if code != 1 || len(out) != 0 {
		t.Errorf("decrypt of a tampered ciphertext: exit %d, stdout %q", code, out)
	}
	checkErrorLines(t, "decrypt of a tampered ciphertext", errOut, "", "")
}

func TestIntegrationSealedAndBadToken(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "k")

	_, errOut, code := s.kr(t, map[string]string{"KEYRAFT_TOKEN": "not-a-token"}, nil, "keys", "list")
	if code != 1 {
		t.Errorf("keys list with a bad token: exit %d", code)
	}
	checkErrorLines(t, "bad token", errOut, "(status 403)", "set KEYRAFT_TOKEN to a valid token")
	_, errOut, code = s.kr(t, map[string]string{"KEYRAFT_TOKEN": "not-a-token"}, []byte("x"), "encrypt", "k")
	if code != 1 {
		t.Errorf("encrypt with a bad token: exit %d", code)
	}
	checkErrorLines(t, "encrypt with a bad token", errOut, "(status 403)", "set KEYRAFT_TOKEN to a valid token")

	if out := string(s.ok(t, nil, "operator", "seal")); out != "Success! The server is sealed.\n" {
		t.Errorf("operator seal: %q", out)
	}
	out, errOut, code := s.kr(t, nil, nil, "status")
	if code != 2 || errOut != "" || !regexp.MustCompile(`(?m)^Sealed\s+true$`).Match(out) {
		t.Errorf("status of a sealed server: exit %d (want 2), stderr %q, stdout:\n%s", code, errOut, out)
	}
	for _, args := range [][]string{{"encrypt", "k"}, {"keys", "list"}, {"keys", "read", "k"}} {
		out, errOut, code := s.kr(t, nil, []byte("x"), args...)
		if code != 1 || len(out) != 0 {
			t.Errorf("%v on a sealed server: exit %d, stdout %q", args, code, out)
		}
		checkErrorLines(t, strings.Join(args, " ")+" while sealed", errOut, "(status 503)", "keyraft operator unseal")
	}

	// Unseal from stdin, as an operator would pipe it.
	if out := s.ok(t, []byte(s.unsealKey+"\n"), "operator", "unseal"); !regexp.MustCompile(`(?m)^Sealed\s+false$`).Match(out) {
		t.Errorf("operator unseal:\n%s", out)
	}
	s.ok(t, nil, "status")
	s.ok(t, []byte("x"), "encrypt", "k")
}

// TestIntegrationServerRefusals checks that the server command refuses a
// wrong command line or config with one error line, before it starts
// anything.
func TestIntegrationServerRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.hcl")
	os.WriteFile(typo, []byte(`storage "raft" {
  path    = "`+filepath.Join(dir, "data")+`"
  node_id = "n1"
}

listener "tcp" {
  adress      = "127.0.0.1:0"
  tls_disable = true
}
`), 0o600)
	unknownTop := filepath.Join(dir, "unknown.hcl")
	os.WriteFile(unknownTop, []byte(`storage "raft" {
  path    = "`+filepath.Join(dir, "data")+`"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:0"
  tls_disable = true
}
colour = "blue"
`), 0o600)
	missing := filepath.Join(dir, "missing.hcl")

	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		err, hint string
	}{
		{"no flags", []string{"server"}, 2, "the server needs -config=FILE or -dev", "keyraft server -dev"},
		{"-dev with -config", []string{"server", "-dev", "-config", typo}, 2, "-dev and -config cannot be used together", "-dev"},
		{"unknown field", []string{"server", "-config", typo}, 1, typo + ":7", "config"},
		{"unknown top-level field", []string{"server", "-config", unknownTop}, 1, unknownTop + ":9", "config"},
		{"missing config file", []string{"server", "-config", missing}, 1, "config file " + missing + " does not exist", "-config"},
		{"stray argument", []string{"server", "-dev", "extra"}, 2, `unexpected argument "extra"`, "keyraft server -h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := run(ctx, tc.args, nil, &out, &errOut, func(string) string { return "" })
			if code != tc.code || out.Len() != 0 {
				t.Errorf("exit %d (want %d), stdout %q", code, tc.code, out.String())
			}
			checkErrorLines(t, tc.name, errOut.String(), tc.err, tc.hint)
		})
	}
	// The field is named in the error.
	var errOut bytes.Buffer
	run(context.Background(), []string{"server", "-config", typo}, nil, &bytes.Buffer{}, &errOut, func(string) string { return "" })
	if !strings.Contains(errOut.String(), `"adress"`) {
		t.Errorf("unknown field error does not name the field: %q", errOut.String())
	}
	errOut.Reset()
	run(context.Background(), []string{"server", "-config", unknownTop}, nil, &bytes.Buffer{}, &errOut, func(string) string { return "" })
	if !strings.Contains(errOut.String(), `"colour"`) {
		t.Errorf("unknown top-level field error does not name the field: %q", errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("a refused config created its data dir (%v)", err)
	}
}

// path-help prints the help the server's route table has for a path.
func TestIntegrationPathHelp(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	out, errOut, code := s.kr(t, nil, nil, "path-help", "transit/encrypt/app")
	if code != 0 || !strings.Contains(string(out), "transit/encrypt/:name") || !strings.Contains(string(out), "POST") {
		t.Errorf("path-help transit/encrypt/app: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = s.kr(t, nil, nil, "path-help", "transit/nothing/x")
	if code == 0 || !strings.Contains(errOut, "unsupported path") {
		t.Errorf("path-help of an unknown path: exit %d, stderr %q", code, errOut)
	}
}
