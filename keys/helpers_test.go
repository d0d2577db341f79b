package keys

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var testNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// versionCache generates each (type, version) once per test binary: RSA
// generation (4096 bits especially) is slow.
var versionCache sync.Map // string -> *cachedVersion

type cachedVersion struct {
	once sync.Once
	v    *Version
	err  error
}

// testVersion returns a deep copy of the cached version n of type typ, so
// tests may zero or modify it freely.
func testVersion(tb testing.TB, typ Type, n int) *Version {
	tb.Helper()
	c, _ := versionCache.LoadOrStore(fmt.Sprintf("%s/%d", typ, n), &cachedVersion{})
	cv := c.(*cachedVersion)
	cv.once.Do(func() { cv.v, cv.err = GenerateVersion(typ, n, testNow, 0) })
	if cv.err != nil {
		tb.Fatalf("GenerateVersion(%s, %d): %v", typ, n, cv.err)
	}
	cp := *cv.v
	cp.Secret = append([]byte(nil), cv.v.Secret...)
	cp.HMACKey = append([]byte(nil), cv.v.HMACKey...)
	return &cp
}

func testHandle(tb testing.TB, spec Spec, n int) *Handle {
	tb.Helper()
	h, err := NewHandle(spec, testVersion(tb, spec.Type, n))
	if err != nil {
		tb.Fatalf("NewHandle(%+v): %v", spec, err)
	}
	return h
}

// wantErr fails unless err wraps sentinel and its message contains substr.
func wantErr(tb testing.TB, err, sentinel error, substr string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error, want %v containing %q", sentinel, substr)
	}
	if !errors.Is(err, sentinel) {
		tb.Fatalf("error %q does not wrap %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), substr) {
		tb.Fatalf("error %q does not contain %q", err, substr)
	}
}

func mustParse(tb testing.TB, s string) (int, []byte) {
	tb.Helper()
	v, body, err := ParseCiphertext(s)
	if err != nil {
		tb.Fatalf("ParseCiphertext(%q): %v", s, err)
	}
	return v, body
}

func mustParseSig(tb testing.TB, s string) (int, []byte) {
	tb.Helper()
	v, body, err := ParseSignature(s)
	if err != nil {
		tb.Fatalf("ParseSignature(%q): %v", s, err)
	}
	return v, body
}
