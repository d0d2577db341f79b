package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyraft/keyraft/internal/openbao"
)

// TestKeysBackupCLI: keys backup writes a backup only its owner can read,
// keys restore takes it back under another name, and the mistakes say
// what to do.
func TestKeysBackupCLI(t *testing.T) {
	s := startDevServer(t)
	dir := t.TempDir()
	s.ok(t, nil, "keys", "create", "-exportable", "-allow-plaintext-backup", "app")
	ct := strings.TrimSpace(string(s.ok(t, []byte("kept"), "encrypt", "app")))
	file := filepath.Join(dir, "app.backup")
	for _, target := range []string{"keyraft", "openbao"} {
		_, errOut, code := s.kr(t, nil, nil, "keys", "backup", "-for="+target, "app", file)
		if code != 0 || !strings.Contains(errOut, "Saved a backup of key app for "+target) {
			t.Fatalf("keys backup -for=%s: exit %d, %q", target, code, errOut)
		}
		if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("the backup file: %v %v, want mode 0600", st, err)
		}
		s.ok(t, nil, "keys", "restore", file, "copy-"+target)
		if pt := s.ok(t, []byte(ct), "decrypt", "copy-"+target); string(pt) != "kept" {
			t.Fatalf("decrypt with the copy restored from the %s backup: %q", target, pt)
		}
	}
	// '-' is stdout, and stdin for restore.
	out := s.ok(t, nil, "keys", "backup", "app", "-")
	if _, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(out))); err != nil {
		t.Fatalf("backup on stdout is not base64: %v", err)
	}
	s.ok(t, out, "keys", "restore", "-", "copy-stdin")

	s.ok(t, nil, "keys", "create", "plain")
	for _, tc := range []struct {
		args          []string
		code          int
		wantErr, hint string
	}{
		{[]string{"keys", "backup", "app"}, 2, "missing FILE", "usage: keyraft keys backup"},
		{[]string{"keys", "backup", "-for=pkcs12", "app", "-"}, 2, `invalid -for "pkcs12"`, "usage: keyraft keys backup"},
		{[]string{"keys", "backup", "plain", file}, 1, "exportable and allow_plaintext_backup", "keyraft keys config -exportable -allow-plaintext-backup plain"},
		{[]string{"keys", "restore", file}, 1, "already exists", "restore it under another name"},
		{[]string{"keys", "restore", filepath.Join(dir, "nope")}, 1, "no such file", "FILE is a backup"},
	} {
		_, errOut, code := s.kr(t, nil, nil, tc.args...)
		if code != tc.code {
			t.Errorf("keyraft %s: exit %d, want %d (%q)", strings.Join(tc.args, " "), code, tc.code, errOut)
		}
		checkErrorLines(t, strings.Join(tc.args, " "), errOut, tc.wantErr, tc.hint)
	}
}

// TestKeysBackupDocSnippets runs the commands of "Moving a key to Vault
// or OpenBao" in docs/byok.md as written: keyraft commands against a dev
// server, the bao/vault CLI (the bao binary) against keyraft when it
// reads a backup and against OpenBao when it restores one. What keyraft
// encrypted before then decrypts on OpenBao. Skipped without bao.
func TestKeysBackupDocSnippets(t *testing.T) {
	bao := openbao.Start(t)
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "-exportable", "-allow-plaintext-backup", "app")
	ct := strings.TrimSpace(string(s.ok(t, []byte("moved"), "encrypt", "app")))

	doc, err := os.ReadFile("../../docs/byok.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Moving a key to Vault or OpenBao\n")
	if !ok {
		t.Fatal(`docs/byok.md has no section "Moving a key to Vault or OpenBao"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	t.Chdir(t.TempDir()) // the snippets name app.backup in the current directory
	restored := 0
	for _, line := range strings.Split(section, "\n") {
		code, ok := strings.CutPrefix(line, "    ")
		if !ok || strings.TrimSpace(code) == "" {
			continue
		}
		args := strings.Fields(code)
		var redirect string
		if i := indexOf(args, ">"); i >= 0 {
			args, redirect = args[:i], args[i+1]
		}
		var stdout []byte
		switch {
		case args[0] == "keyraft":
			out, errOut, code := s.kr(t, nil, nil, args[1:]...)
			if code != 0 {
				t.Fatalf("docs/byok.md: %s: exit %d, %s", line, code, errOut)
			}
			stdout = out
		case (args[0] == "bao" || args[0] == "vault") && indexOf(args, "transit/restore/app") >= 0:
			if restored > 0 { // a second snippet restores the same key: as another
				args[indexOf(args, "transit/restore/app")] = "transit/restore/app-again"
			}
			stdout = []byte(bao.Bao(t, args[1:]...))
			restored++
		case args[0] == "bao" || args[0] == "vault":
			stdout = []byte(bao.BaoAt(t, s.addr, args[1:]...))
		default:
			t.Fatalf("docs/byok.md: a snippet line this test cannot run: %q", code)
		}
		if redirect != "" {
			if err := os.WriteFile(redirect, stdout, 0o600); err != nil {
				t.Fatal(err)
			}
			// A backup written by a snippet restores on OpenBao too.
			if restored > 0 {
				bao.Bao(t, "write", "transit/restore/app-from-"+args[0], "backup=@"+redirect)
				assertBaoDecrypts(t, bao, "app-from-"+args[0], ct, "moved")
			}
		}
	}
	if restored == 0 {
		t.Fatal("docs/byok.md: no snippet restores the key on OpenBao")
	}
	assertBaoDecrypts(t, bao, "app", ct, "moved")
}

func indexOf(args []string, s string) int {
	for i, a := range args {
		if a == s {
			return i
		}
	}
	return -1
}

// assertBaoDecrypts decrypts ct with key name on OpenBao.
func assertBaoDecrypts(t *testing.T, bao *openbao.Server, name, ct, want string) {
	t.Helper()
	sec, err := bao.Client.Logical().Write("transit/decrypt/"+name, map[string]any{"ciphertext": ct})
	if err != nil {
		t.Fatalf("OpenBao does not decrypt keyraft's ciphertext with %s: %v", name, err)
	}
	pt, _ := base64.StdEncoding.DecodeString(sec.Data["plaintext"].(string))
	if !bytes.Equal(pt, []byte(want)) {
		t.Fatalf("OpenBao decrypts to %q", pt)
	}
}
