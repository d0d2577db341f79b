package transport

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestReadBody: every body length around the growth steps and the limit
// reads back whole, a declared length over the limit is refused before a
// read, a chunked body over the limit is refused, and memory follows the
// declared length (a 100 KiB body is not given a 128 KiB buffer).
func TestReadBody(t *testing.T) {
	const limit = 300 << 10
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 100 << 10, 128 << 10, limit - 1, limit} {
		for _, chunked := range []bool{false, true} {
			body := bytes.Repeat([]byte{'a'}, n)
			r, _ := http.NewRequest("POST", "/", io.NopCloser(bytes.NewReader(body)))
			r.ContentLength = int64(n)
			if chunked {
				r.ContentLength = -1
			}
			got, err := readBody(r, limit)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("n=%d chunked=%v: %d bytes, %v", n, chunked, len(got), err)
			}
			if !chunked && cap(got) > n+1 && n >= 64<<10 {
				t.Fatalf("n=%d: buffer of %d bytes", n, cap(got))
			}
		}
	}
	r, _ := http.NewRequest("POST", "/", strings.NewReader(""))
	r.ContentLength = limit + 1
	r.Body = io.NopCloser(failingReader{t})
	if _, err := readBody(r, limit); err == nil {
		t.Fatal("a declared length over the limit was accepted")
	}
	r, _ = http.NewRequest("POST", "/", io.NopCloser(bytes.NewReader(make([]byte, limit+1))))
	r.ContentLength = -1
	if _, err := readBody(r, limit); err == nil {
		t.Fatal("a chunked body over the limit was accepted")
	}
}

type failingReader struct{ t *testing.T }

func (f failingReader) Read([]byte) (int, error) {
	f.t.Fatal("the body was read although its declared length is over the limit")
	return 0, io.EOF
}
