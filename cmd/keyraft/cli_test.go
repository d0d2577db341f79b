package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/api"
	"github.com/keyraft/keyraft/internal/version"
	"github.com/keyraft/keyraft/transport"
)

// keyraft runs the CLI in the test process.
func keyraft(t *testing.T, vars map[string]string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return vars[k] })
	return out.String(), errOut.String(), code
}

// closedAddr returns the URL of a 127.0.0.1 port that nothing listens on:
// connecting to it is refused, for real.
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

func TestHelp(t *testing.T) {
	out, errOut, code := keyraft(t, nil, "")
	if code != 2 || out != "" || !strings.HasPrefix(errOut, "Usage: keyraft <command>") {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %.40q", code, out, errOut)
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		out, errOut, code := keyraft(t, nil, "", args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: keyraft <command>") {
			t.Errorf("%v: exit %d, stdout %.40q, stderr %q", args, code, out, errOut)
		}
		if args[0] == "help" && len(args) == 1 {
			for _, c := range commands {
				if !strings.Contains(out, "    "+c.name+" ") {
					t.Errorf("usage does not list %q", c.name)
				}
			}
		}
	}
	for _, c := range commands {
		if c == serverCmd || c == helpCmd {
			continue // server's flags are the server's; help -h is above
		}
		words := strings.Fields(c.name)
		out, errOut, code := keyraft(t, nil, "", append(words, "-h")...)
		want := "Usage: " + usageLine(c) + "\n\n"
		if code != 0 || errOut != "" || !strings.HasPrefix(out, want) {
			t.Errorf("%s -h: exit %d, stdout %.60q, stderr %q", c.name, code, out, errOut)
		}
		if c.network && !strings.Contains(out, "-address URL") {
			t.Errorf("%s -h does not list -address", c.name)
		}
		viaHelp, _, code := keyraft(t, nil, "", append([]string{"help"}, words...)...)
		if code != 0 || viaHelp != out {
			t.Errorf("help %s differs from %s -h", c.name, c.name)
		}
	}
	out, _, code = keyraft(t, nil, "", "help", "-h")
	if code != 0 || !strings.HasPrefix(out, "Usage: keyraft help [COMMAND]\n") {
		t.Errorf("help -h: exit %d, %q", code, out)
	}
	for _, g := range []string{"keys", "operator"} {
		out, _, code := keyraft(t, nil, "", g, "-h")
		if code != 0 || !strings.HasPrefix(out, "Usage: keyraft "+g+" <command>") {
			t.Errorf("%s -h: exit %d, %q", g, code, out)
		}
	}
}

func TestUsageMistakes(t *testing.T) {
	tests := []struct {
		args []string
		want string // the whole of stderr
	}{
		{[]string{"frobnicate"}, "error: unknown command \"frobnicate\"\nhint: commands: server, status, operator, keys, encrypt, decrypt, sign, verify, audit, report, policy, token, grant, plugin, path-help, completion, version, help; run 'keyraft help' for more\n"},
		{[]string{"keys"}, "error: missing keys command\nhint: keys commands: create, list, read, rotate, config, delete, disable, enable, compromise, destroy, cancel-destroy, import, import-version, backup, restore\n"},
		{[]string{"keys", "-type=rsa-2048", "k"}, "error: missing keys command\nhint: keys commands: create, list, read, rotate, config, delete, disable, enable, compromise, destroy, cancel-destroy, import, import-version, backup, restore\n"},
		{[]string{"keys", "make", "k"}, "error: unknown command \"keys make\"\nhint: keys commands: create, list, read, rotate, config, delete, disable, enable, compromise, destroy, cancel-destroy, import, import-version, backup, restore\n"},
		{[]string{"operator"}, "error: missing operator command\nhint: operator commands: init, unseal, seal, raft, members, rekey, generate-root, rotate, key-status, tls\n"},
		{[]string{"-address=http://x:1", "status"}, "error: flag -address=http://x:1 comes before the command\nhint: flags go after the command: keyraft <command> [flags] [args]; run 'keyraft help' for the commands\n"},
		{[]string{"keys", "create"}, "error: missing NAME\nhint: usage: keyraft keys create [flags] NAME (see 'keyraft keys create -h')\n"},
		{[]string{"keys", "read"}, "error: missing NAME\nhint: usage: keyraft keys read [flags] NAME (see 'keyraft keys read -h')\n"},
		{[]string{"keys", "rotate"}, "error: missing NAME\nhint: usage: keyraft keys rotate [flags] NAME (see 'keyraft keys rotate -h')\n"},
		{[]string{"keys", "delete"}, "error: missing NAME\nhint: usage: keyraft keys delete [flags] NAME (see 'keyraft keys delete -h')\n"},
		{[]string{"encrypt"}, "error: missing KEY\nhint: usage: keyraft encrypt [flags] KEY (see 'keyraft encrypt -h')\n"},
		{[]string{"audit", "receive"}, "error: missing -o\nhint: keyraft audit receive -listen 127.0.0.1:9090 -o /var/log/keyraft/audit.jsonl\n"},
		{[]string{"decrypt"}, "error: missing KEY\nhint: usage: keyraft decrypt [flags] KEY (see 'keyraft decrypt -h')\n"},
		{[]string{"sign"}, "error: missing KEY\nhint: usage: keyraft sign [flags] KEY (see 'keyraft sign -h')\n"},
		{[]string{"verify", "-signature=vault:v1:x"}, "error: missing KEY\nhint: usage: keyraft verify [flags] KEY (see 'keyraft verify -h')\n"},
		{[]string{"verify", "k"}, "error: missing -signature\nhint: usage: keyraft verify [flags] KEY (see 'keyraft verify -h')\n"},
		{[]string{"keys", "create", "k", "-type=ed25519"}, "error: flag -type=ed25519 comes after k; flags go first\nhint: usage: keyraft keys create [flags] NAME (see 'keyraft keys create -h')\n"},
		{[]string{"keys", "read", "a", "b"}, "error: unexpected argument \"b\"\nhint: usage: keyraft keys read [flags] NAME (see 'keyraft keys read -h')\n"},
		{[]string{"status", "now"}, "error: unexpected argument \"now\"\nhint: usage: keyraft status [flags] (see 'keyraft status -h')\n"},
		{[]string{"keys", "create", "-typ=aes256-gcm96", "k"}, "error: flag provided but not defined: -typ\nhint: usage: keyraft keys create [flags] NAME (see 'keyraft keys create -h')\n"},
		{[]string{"keys", "list", "-format=yaml"}, "error: invalid -format \"yaml\": use table or json\nhint: usage: keyraft keys list [flags] (see 'keyraft keys list -h')\n"},
		{[]string{"keys", "create", "-derived=maybe", "k"}, "error: invalid boolean value \"maybe\" for -derived: parse error\nhint: usage: keyraft keys create [flags] NAME (see 'keyraft keys create -h')\n"},
		{[]string{"keys", "create", "-auto-rotate-period=soon", "k"}, "error: invalid value \"soon\" for flag -auto-rotate-period: use a duration like 24h, 30d or 3600 (seconds)\nhint: usage: keyraft keys create [flags] NAME (see 'keyraft keys create -h')\n"},
		{[]string{"keys", "config", "-auto-rotate-period=-1h", "k"}, "error: invalid value \"-1h\" for flag -auto-rotate-period: the duration must not be negative\nhint: usage: keyraft keys config [flags] NAME (see 'keyraft keys config -h')\n"},
		{[]string{"keys", "config", "-min-decryption-version=two", "k"}, "error: invalid value \"two\" for flag -min-decryption-version: parse error\nhint: usage: keyraft keys config [flags] NAME (see 'keyraft keys config -h')\n"},
		{[]string{"keys", "config", "k"}, "error: nothing to change\nhint: give at least one of -min-decryption-version, -min-encryption-version, -deletion-allowed, -exportable, -allow-plaintext-backup, -auto-rotate-period, -activation-time, -auto-rotate-share\n"},
		{[]string{"operator", "init", "-key-shares=0"}, "error: -key-shares must be at least 1\nhint: usage: keyraft operator init [flags] (see 'keyraft operator init -h')\n"},
		{[]string{"operator", "init", "-key-threshold=0"}, "error: -key-threshold must be at least 1\nhint: usage: keyraft operator init [flags] (see 'keyraft operator init -h')\n"},
		{[]string{"operator", "init", "-key-shares=3", "-key-threshold=4"}, "error: -key-threshold (4) is larger than -key-shares (3)\nhint: usage: keyraft operator init [flags] (see 'keyraft operator init -h')\n"},
		{[]string{"operator", "unseal", "-reset", "abcd"}, "error: -reset takes no KEY\nhint: usage: keyraft operator unseal [flags] [KEY] (see 'keyraft operator unseal -h')\n"},
		{[]string{"decrypt", "-out=x", "-format=json", "k"}, "error: -out and -format=json do not go together\nhint: usage: keyraft decrypt [flags] KEY (see 'keyraft decrypt -h')\n"},
		{[]string{"help", "keys", "make"}, "error: unknown command \"keys make\"\nhint: keys commands: create, list, read, rotate, config, delete, disable, enable, compromise, destroy, cancel-destroy, import, import-version, backup, restore\n"},
		{[]string{"version", "now"}, "error: unexpected argument \"now\"\nhint: usage: keyraft version (see 'keyraft version -h')\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			// A closed address: a usage mistake must be caught before any
			// request, whatever the server.
			out, errOut, code := keyraft(t, map[string]string{"KEYRAFT_ADDR": closedAddr(t)}, "", tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if errOut != tt.want {
				t.Errorf("stderr\n got: %q\nwant: %q", errOut, tt.want)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
		})
	}
}

// TestUnreachable runs every client command against a closed port: one
// error line, the hint to start the server or fix KEYRAFT_ADDR, exit 1.
func TestUnreachable(t *testing.T) {
	addr := closedAddr(t)
	want := fmt.Sprintf("error: cannot connect to %s: connection refused\nhint: is the server running? set KEYRAFT_ADDR (now %s)\n", addr, addr)
	cmds := [][]string{
		{"status"}, {"status", "-format=json"},
		{"operator", "init"}, {"operator", "unseal", "abcd"}, {"operator", "unseal", "-reset"}, {"operator", "seal"},
		{"keys", "create", "-type=ed25519", "-derived", "-auto-rotate-period=30d", "k"},
		{"keys", "list"}, {"keys", "read", "k"}, {"keys", "rotate", "k"},
		{"keys", "config", "-deletion-allowed=true", "k"}, {"keys", "delete", "k"},
		{"encrypt", "-context=c", "k"}, {"decrypt", "k"}, {"sign", "-hash-algorithm=sha2-512", "k"},
		{"verify", "-signature=vault:v1:x", "k"},
	}
	for _, args := range cmds {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdin := "data"
			if args[0] == "operator" {
				stdin = "abcd\n"
			}
			if args[0] == "decrypt" {
				stdin = "vault:v1:abc\n"
			}
			out, errOut, code := keyraft(t, map[string]string{"KEYRAFT_ADDR": addr}, stdin, args...)
			if code != 1 || errOut != want || out != "" {
				t.Errorf("exit %d\nstderr %q\nwant   %q\nstdout %q", code, errOut, want, out)
			}
		})
	}

	// The address comes from -address, else KEYRAFT_ADDR, else VAULT_ADDR.
	other := closedAddr(t)
	for _, tc := range []struct {
		vars map[string]string
		args []string
		addr string
	}{
		{map[string]string{"VAULT_ADDR": addr}, []string{"status"}, addr},
		{map[string]string{"VAULT_ADDR": other, "KEYRAFT_ADDR": addr}, []string{"status"}, addr},
		{map[string]string{"KEYRAFT_ADDR": other}, []string{"status", "-address=" + addr}, addr},
	} {
		_, errOut, code := keyraft(t, tc.vars, "", tc.args...)
		if code != 1 || !strings.Contains(errOut, "(now "+tc.addr+")") {
			t.Errorf("%v %v: exit %d, %q", tc.vars, tc.args, code, errOut)
		}
	}
}

func TestBadEnvironment(t *testing.T) {
	tests := []struct {
		vars map[string]string
		args []string
		want string
	}{
		{nil, []string{"status", "-address=127.0.0.1:8200"},
			"error: invalid address \"127.0.0.1:8200\": want a URL like https://127.0.0.1:8200\nhint: set -address or KEYRAFT_ADDR to the server's URL\n"},
		{map[string]string{"KEYRAFT_ADDR": "localhost"}, []string{"keys", "list"},
			"error: invalid address \"localhost\": want a URL like https://127.0.0.1:8200\nhint: set -address or KEYRAFT_ADDR to the server's URL\n"},
		{map[string]string{"KEYRAFT_ADDR": "https://127.0.0.1:1", "KEYRAFT_CACERT": "/nonexistent/ca.pem"}, []string{"status"},
			"error: reading the CA certificate: open /nonexistent/ca.pem: no such file or directory\n"},
	}
	for _, tt := range tests {
		_, errOut, code := keyraft(t, tt.vars, "", tt.args...)
		if code != 1 || errOut != tt.want {
			t.Errorf("%v: exit %d\n got %q\nwant %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestInputErrors(t *testing.T) {
	addr := closedAddr(t)
	vars := map[string]string{"KEYRAFT_ADDR": addr}
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		args  []string
		stdin string
		want  string
		code  int
	}{
		{[]string{"decrypt", "k"}, " \n\t", "error: no ciphertext to decrypt\nhint: pipe in the output of 'keyraft encrypt', or use -in FILE\n", 1},
		{[]string{"encrypt", "-in=" + missing, "k"}, "", "error: open " + missing + ": no such file or directory\n", 1},
		{[]string{"operator", "unseal"}, "  \n", "error: no unseal key given\nhint: pass it on stdin or as an argument: keyraft operator unseal [KEY]\n", 2},
	}
	for _, tt := range tests {
		_, errOut, code := keyraft(t, vars, tt.stdin, tt.args...)
		if code != tt.code || errOut != tt.want {
			t.Errorf("%v: exit %d\n got %q\nwant %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestServerIsDispatched(t *testing.T) {
	// Whatever runServer does, its exit code is the program's.
	_, _, code := keyraft(t, nil, "", "server", "-h")
	var out, errOut bytes.Buffer
	want := runServer(context.Background(), []string{"-h"}, &out, &errOut, func(string) string { return "" })
	if code != want {
		t.Errorf("exit %d, runServer says %d", code, want)
	}
}

func TestExplain(t *testing.T) {
	e := &env{addr: "http://127.0.0.1:8200"}
	var unknownCA x509.UnknownAuthorityError
	tests := []struct {
		err        error
		msg, hint  string
		stderrWant string
	}{
		{err: &api.ResponseError{StatusCode: 503, Errors: []string{"server is sealed"}},
			stderrWant: "error: server is sealed (status 503)\nhint: unseal it with 'keyraft operator unseal'\n"},
		{err: &api.ResponseError{StatusCode: 403, Errors: []string{"permission denied"}},
			stderrWant: "error: permission denied (status 403)\nhint: the token is missing, invalid or expired, or its policies do not allow this request: 'keyraft token lookup' tells which\n"},
		{err: &api.ResponseError{StatusCode: 403, Errors: []string{"permission denied"}, Method: "LIST", Path: "transit/keys"},
			stderrWant: "error: permission denied (status 403)\nhint: the token is missing, invalid or expired, or its policies do not allow list on transit/keys: 'keyraft token lookup' tells which\n"},
		{err: &hintError{err: &api.ResponseError{StatusCode: 403, Errors: []string{"permission denied: invalid token"}}, hint: "the command's hint"},
			stderrWant: "error: permission denied: invalid token (status 403)\nhint: the server does not know this token (mistyped, revoked, or expired): set KEYRAFT_TOKEN to a valid token\n"},
		{err: &hintError{err: &api.ResponseError{StatusCode: 403, Errors: []string{"permission denied: a grant must be approved by another identity"}}, hint: "the command's hint"},
			stderrWant: "error: permission denied: a grant must be approved by another identity (status 403)\nhint: the command's hint\n"},
		{err: &api.ResponseError{StatusCode: 404, Errors: []string{"key \"k\" not found"}},
			stderrWant: "error: key \"k\" not found (status 404)\n"},
		{err: &api.ResponseError{StatusCode: 400, Errors: []string{"line one\nline two\x1b[2J"}},
			stderrWant: "error: line one line two [2J (status 400)\n"},
		{err: &url.Error{Op: "Get", URL: "https://127.0.0.1:8200/v1/sys/seal-status", Err: unknownCA},
			stderrWant: "error: GET https://127.0.0.1:8200/v1/sys/seal-status: x509: certificate signed by unknown authority\nhint: set KEYRAFT_CACERT to the PEM file of the CA that signed the server's certificate\n"},
		{err: &url.Error{Op: "Get", URL: "http://nohost.invalid:8200/v1/sys/seal-status", Err: &net.DNSError{Err: "no such host", Name: "nohost.invalid", IsNotFound: true}},
			stderrWant: "error: GET http://nohost.invalid:8200/v1/sys/seal-status: lookup nohost.invalid: no such host\nhint: check the host in KEYRAFT_ADDR (now http://127.0.0.1:8200)\n"},
		{err: &url.Error{Op: "Get", URL: "https://127.0.0.1:8200/v1/sys/seal-status", Err: errors.New("http: server gave HTTP response to HTTPS client")},
			stderrWant: "error: GET https://127.0.0.1:8200/v1/sys/seal-status: http: server gave HTTP response to HTTPS client\nhint: the server speaks plain HTTP: use an http:// address (now http://127.0.0.1:8200)\n"},
		{err: fmt.Errorf("wrapped: %w", context.DeadlineExceeded),
			stderrWant: "error: wrapped: context deadline exceeded\nhint: the server did not answer in time; is KEYRAFT_ADDR (now http://127.0.0.1:8200) right?\n"},
		{err: context.Canceled, stderrWant: "error: interrupted\n"},
	}
	for _, tt := range tests {
		var errOut bytes.Buffer
		e.stderr = &errOut
		if code := e.report(tt.err); code != 1 {
			t.Errorf("%v: exit %d", tt.err, code)
		}
		if errOut.String() != tt.stderrWant {
			t.Errorf("\n got %q\nwant %q", errOut.String(), tt.stderrWant)
		}
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"0": 0, "3600": time.Hour, "24h": 24 * time.Hour, "90m": 90 * time.Minute, "30d": 30 * 24 * time.Hour, "0d": 0,
	}
	for in, want := range good {
		if d, err := parseDuration(in); err != nil || d != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	bad := map[string]string{
		"":                     "use a duration like 24h, 30d or 3600 (seconds)",
		"soon":                 "use a duration like 24h, 30d or 3600 (seconds)",
		"1.5d":                 "use a duration like 24h, 30d or 3600 (seconds)",
		"-5":                   "the duration must not be negative",
		"-2d":                  "the duration must not be negative",
		"-1h":                  "the duration must not be negative",
		"9223372036854775807":  "the duration is too long",
		"106751991167301d":     "the duration is too long",
		"-9223372036854775808": "the duration must not be negative",
	}
	for in, want := range bad {
		if _, err := parseDuration(in); err == nil || err.Error() != want {
			t.Errorf("parseDuration(%q): %v, want %s", in, err, want)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plain")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := writeFileAtomically(path, bytes.NewReader([]byte("new\x00bytes")), nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "new\x00bytes" {
		t.Fatalf("content %q, %v", got, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := writeFileAtomically(filepath.Join(dir, "no", "such", "dir"), bytes.NewReader([]byte("x")), nil); err == nil {
		t.Errorf("write into a missing directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestReadInputLimit(t *testing.T) {
	e := &env{stdin: strings.NewReader("12345")}
	if _, err := e.readInput("", 4); err == nil || err.Error() != "stdin is larger than 4 bytes" {
		t.Errorf("over the limit: %v", err)
	}
	e.stdin = strings.NewReader("1234")
	if b, err := e.readInput("-", 4); err != nil || string(b) != "1234" {
		t.Errorf("at the limit: %q, %v", b, err)
	}
}

func TestTables(t *testing.T) {
	var out bytes.Buffer
	e := &env{stdout: &out}
	err := e.printStatus(&globals{format: "table"}, &api.SealStatus{Type: "shamir", Initialized: true, Sealed: true, T: 3, N: 5, Progress: 1, Version: "0.1.0"})
	want := `Key                Value
---                -----
Seal Type          shamir
Initialized        true
Sealed             true
Total Shares       5
Threshold          3
Unseal Progress    1/3
Unseal Nonce       n/a
Version            0.1.0
`
	if err != nil || out.String() != want {
		t.Errorf("status table:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	printTable(&out, keyRows(&api.Key{Name: "k\x1b[31m", Type: "ed25519", LatestVersion: 2, AutoRotatePeriod: 86400,
		Keys: map[string]json.RawMessage{"10": json.RawMessage(`{"public_key":"b"}`), "2": json.RawMessage(`{"public_key":"a"}`)}}))
	for _, line := range []string{"auto_rotate_period        24h0m0s\n", "name                      k?[31m\n", "keys/2                    {\"public_key\":\"a\"}\nkeys/10 "} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("key table lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "kdf") {
		t.Errorf("key table shows an empty kdf")
	}
}

// TestCommandListLayout: in the command list and in each group's, every
// name is followed by at least two spaces and the summaries start in one
// column, however long the names; each section heading appears once.
func TestCommandListLayout(t *testing.T) {
	lists := map[string]string{}
	out, _, _ := keyraft(t, nil, "", "help")
	lists["help"] = out
	for g := range groups {
		out, _, code := keyraft(t, nil, "", append(strings.Fields(g), "-h")...)
		if code != 0 {
			t.Fatalf("%s -h: exit %d", g, code)
		}
		lists[g+" -h"] = out
	}
	names := map[string]string{}
	for _, c := range commands {
		names[c.name] = c.summary
	}
	for what, out := range lists {
		column := -1
		for _, line := range strings.Split(out, "\n") {
			rest, ok := strings.CutPrefix(line, "    ")
			if !ok {
				continue
			}
			for name, summary := range names {
				after, ok := strings.CutPrefix(rest, name)
				if !ok || !strings.HasSuffix(after, summary) || strings.TrimSpace(strings.TrimSuffix(after, summary)) != "" {
					continue
				}
				if !strings.HasPrefix(after, "  ") {
					t.Errorf("%s: %q runs into its summary: %q", what, name, line)
				}
				if col := len(line) - len(summary); column == -1 {
					column = col
				} else if col != column {
					t.Errorf("%s: the summary of %q starts at column %d, the others at %d", what, name, col, column)
				}
			}
		}
		if column == -1 {
			t.Errorf("%s lists no command:\n%s", what, out)
		}
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(lists["help"], "\n") {
		if strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " ") {
			if seen[line] {
				t.Errorf("heading %q appears twice in the command list", line)
			}
			seen[line] = true
		}
	}
}

// TestSuggestions: a mistyped command gets the nearest one as its hint.
func TestSuggestions(t *testing.T) {
	for args, want := range map[string]string{
		"keys craete dk":               `did you mean "keys create"?`,
		"key create dk":                `did you mean "keys create"?`,
		"stauts":                       `did you mean "status"?`,
		"keys cre dk":                  `did you mean "keys create"?`,
		"operator raft snapshot sav f": `did you mean "operator raft snapshot save"?`,
		"polcy list":                   `did you mean "policy list"?`,
		"keys make k":                  "keys commands: create, list, read, rotate, config, delete, disable, enable, compromise, destroy, cancel-destroy, import, import-version, backup, restore",
	} {
		_, errOut, code := keyraft(t, nil, "", strings.Fields(args)...)
		if code != 2 || !strings.HasSuffix(errOut, "\nhint: "+want+"\n") {
			t.Errorf("%s: exit %d, %q; want the hint %q", args, code, errOut, want)
		}
	}
}

// TestVersion: 'keyraft version' prints the version the API reports.
func TestVersion(t *testing.T) {
	if transport.Version != version.Version {
		t.Fatalf("transport.Version %q, internal/version %q", transport.Version, version.Version)
	}
	out, _, code := keyraft(t, nil, "", "version")
	if code != 0 || !strings.HasPrefix(out, "keyraft "+version.Version+" go") {
		t.Errorf("version: exit %d, %q; want keyraft %s go…", code, out, version.Version)
	}
}

// TestForbiddenHint: a 403 says whether the token is the trouble or which
// capability on which path its policies lack, from the server's words.
func TestForbiddenHint(t *testing.T) {
	for msg, want := range map[string]string{
		"permission denied: missing client token (set X-Vault-Token)":                                                                       "no token was sent: set KEYRAFT_TOKEN (or -token) to a token",
		"permission denied: invalid token":                                                                                                  "set KEYRAFT_TOKEN to a valid token",
		"permission denied: the token has expired":                                                                                          "the token has expired: set KEYRAFT_TOKEN to a valid token",
		"permission denied: the token belongs to another namespace":                                                                         "the token is valid, but it belongs to another namespace: set -namespace or KEYRAFT_NAMESPACE",
		"permission denied: the token may not be used from this address (bound_cidrs)":                                                      "the token is valid, but it may not be used from this address",
		"permission denied: no policy grants update on transit/decrypt/app":                                                                 "the token is valid, but none of its policies grants update on transit/decrypt/app: add a policy",
		"permission denied: batch_input item 2: no policy grants update on transit/decrypt/b":                                               "none of its policies grants update on transit/decrypt/b",
		`permission denied: the most specific rule for transit/decrypt/app, policy "ops" rule "transit/decrypt/app", does not grant update`: `the token is valid, but policy "ops" rule "transit/decrypt/app", its most specific rule for transit/decrypt/app, does not grant update: add update to that rule`,
		`permission denied: policy "ops" rule "transit/*" grants update on transit/decrypt/app only when its conditions hold: source_cidrs`: `the token is valid, but policy "ops" rule "transit/*" grants update on transit/decrypt/app only under conditions`,
		`permission denied: denied by policy "ops" rule "transit/decrypt/*"`:                                                                `the token is valid, but policy "ops" rule "transit/decrypt/*" refuses update on transit/decrypt/app: only a change to that policy lifts it`,
		"permission denied: sudo is required on sys/raw: no policy grants sudo on sys/raw":                                                  "the token is valid, but this needs sudo on sys/raw",
	} {
		hint, decisive := forbiddenHint(&api.ResponseError{StatusCode: 403, Errors: []string{msg}, Method: "POST", Path: "transit/decrypt/app"})
		if !decisive || !strings.Contains(hint, want) {
			t.Errorf("%s:\n got %q (decisive %v)\nwant %q", msg, hint, decisive, want)
		}
	}
	if hint, decisive := forbiddenHint(&api.ResponseError{StatusCode: 403, Errors: []string{"permission denied: only a root token can create a root token"}}); hint != "" || decisive {
		t.Errorf("a refusal that is neither the token's nor a policy's: %q %v", hint, decisive)
	}
}
