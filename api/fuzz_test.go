package api

import (
	"strings"
	"testing"
)

// FuzzResponseError checks that any error body gives a one-line error
// that ends with the status, and never a panic.
func FuzzResponseError(f *testing.F) {
	f.Add(403, []byte(`{"errors":["permission denied"]}`))
	f.Add(404, []byte(`{"errors":[]}`))
	f.Add(503, []byte("<html>\n</html>"))
	f.Add(400, []byte(`{"errors":["line\none","\u001b[31mred"]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		msg := responseError(status, body).Error()
		if strings.ContainsAny(msg, "\r\n\x1b") {
			t.Fatalf("not one clean line: %q", msg)
		}
		if !strings.HasSuffix(msg, ")") || !strings.Contains(msg, "(status ") {
			t.Fatalf("no status: %q", msg)
		}
	})
}
