package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportCLI: keys made on the operator's machine are wrapped by the
// CLI and imported; keyraft then encrypts with exactly that key.
func TestImportCLI(t *testing.T) {
	s := startDevServer(t)
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(dir, "aes.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	out := string(s.ok(t, nil, "keys", "import", "-type=aes256-gcm96", "-hash=SHA384", "byok", keyFile))
	if !strings.Contains(out, "Imported key byok") {
		t.Fatalf("import output: %q", out)
	}
	ct := strings.TrimSpace(string(s.ok(t, []byte("hello"), "encrypt", "byok")))
	body, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct, "vault:v1:"))
	if err != nil || !strings.HasPrefix(ct, "vault:v1:") {
		t.Fatalf("ciphertext %q: %v", ct, err)
	}
	blk, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(blk)
	if pt, err := g.Open(nil, body[:12], body[12:], nil); err != nil || string(pt) != "hello" {
		t.Fatalf("not encrypted under the imported key: %v", err)
	}
	if k := s.readKeyJSON(t, "byok"); k["imported_key"] != true {
		t.Fatalf("imported_key: %v", k["imported_key"])
	}

	// A second version, from standard input.
	key2 := make([]byte, 32)
	rand.Read(key2)
	s.ok(t, key2, "keys", "import-version", "byok", "-")
	if k := s.readKeyJSON(t, "byok"); k["latest_version"] != float64(2) {
		t.Fatalf("latest_version after import-version: %v", k["latest_version"])
	}

	// An ed25519 key in a PEM PKCS#8 file.
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ed)
	pemFile := filepath.Join(dir, "ed.pem")
	os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	s.ok(t, nil, "keys", "import", "-type=ed25519", "edkey", pemFile)
	if k := s.readKeyJSON(t, "edkey"); k["type"] != "ed25519" {
		t.Fatalf("type: %v", k["type"])
	}

	// Mistakes: one error line, a hint where there is one, a non-zero exit.
	for _, tc := range []struct {
		args          []string
		code          int
		wantErr, hint string
	}{
		{[]string{"keys", "import", "x"}, 2, "missing FILE", "usage: keyraft keys import"},
		{[]string{"keys", "import", "x", filepath.Join(dir, "nope")}, 1, "no such file", "FILE is the key to import"},
		{[]string{"keys", "import", "-hash=MD5", "x", keyFile}, 1, "unknown hash function", "-hash takes"},
		{[]string{"keys", "import", "-type=aes128-gcm96", "x", keyFile}, 1, "expected 16 raw bytes, got 32", ""},
		{[]string{"keys", "import", "byok", keyFile}, 1, "cannot be used with an existing key", ""},
		{[]string{"keys", "import-version", "edkey", keyFile}, 1, "not a valid ed25519 key", ""},
	} {
		_, errOut, code := s.kr(t, nil, nil, tc.args...)
		if code != tc.code {
			t.Errorf("keyraft %s: exit %d, want %d (%q)", strings.Join(tc.args, " "), code, tc.code, errOut)
		}
		checkErrorLines(t, strings.Join(tc.args, " "), errOut, tc.wantErr, tc.hint)
		if strings.Contains(errOut, base64.StdEncoding.EncodeToString(key)[:12]) {
			t.Fatalf("the key shows in an error: %q", errOut)
		}
	}
}
