package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	vault "github.com/hashicorp/vault/api"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// randomMarker returns a string that cannot be in any file by chance.
func randomMarker(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// write calls Logical().Write and fails the test on an error or a missing
// answer; it returns the data of the answer.
func write(t *testing.T, c *vault.Client, path string, data map[string]any) map[string]any {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if s == nil || s.Data == nil {
		t.Fatalf("write %s: no data in the answer", path)
	}
	return s.Data
}

// read calls Logical().Read and fails the test on an error or no answer.
func read(t *testing.T, c *vault.Client, path string) map[string]any {
	t.Helper()
	s, err := c.Logical().Read(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if s == nil || s.Data == nil {
		t.Fatalf("read %s: no data in the answer", path)
	}
	return s.Data
}

// str returns data[key] as a string, failing when it is not one.
func str(t *testing.T, data map[string]any, key string) string {
	t.Helper()
	s, ok := data[key].(string)
	if !ok {
		t.Fatalf("field %q is %T (%v), want a string", key, data[key], data[key])
	}
	return s
}

// num returns data[key] as an int; the vault client decodes numbers as
// json.Number.
func num(t *testing.T, data map[string]any, key string) int {
	t.Helper()
	var s string
	switch v := data[key].(type) {
	case json.Number:
		s = v.String()
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		t.Fatalf("field %q is %T (%v), want a number", key, data[key], data[key])
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("field %q = %s: %v", key, s, err)
	}
	return n
}

// boolean returns data[key] as a bool.
func boolean(t *testing.T, data map[string]any, key string) bool {
	t.Helper()
	b, ok := data[key].(bool)
	if !ok {
		t.Fatalf("field %q is %T (%v), want a bool", key, data[key], data[key])
	}
	return b
}

// encrypt encrypts pt with key and returns the ciphertext.
func encrypt(t *testing.T, c *vault.Client, key string, pt []byte) string {
	t.Helper()
	return str(t, write(t, c, "transit/encrypt/"+key, map[string]any{"plaintext": b64(pt)}), "ciphertext")
}

// decrypt decrypts ct with key and returns the plaintext bytes.
func decrypt(t *testing.T, c *vault.Client, key, ct string) []byte {
	t.Helper()
	s := str(t, write(t, c, "transit/decrypt/"+key, map[string]any{"ciphertext": ct}), "plaintext")
	pt, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decrypt %s: plaintext is not base64: %v", key, err)
	}
	return pt
}

// statusOf returns the HTTP status of a vault client error, or 0.
func statusOf(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// sealed is one ciphertext whose plaintext the test knows.
type sealed struct {
	key, ciphertext string
	plaintext       []byte
	what            string
}

// checkDecrypts decrypts every ciphertext and compares it with its plaintext.
func checkDecrypts(t *testing.T, c *vault.Client, cts []sealed) {
	t.Helper()
	for _, s := range cts {
		got := decrypt(t, c, s.key, s.ciphertext)
		if string(got) != string(s.plaintext) {
			t.Errorf("%s (%s, %.20s…): decrypts to %q, want %q", s.what, s.key, s.ciphertext, got, s.plaintext)
		}
	}
}

func mustDecodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64: %v", err)
	}
	return b
}
