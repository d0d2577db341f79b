// Package plugintest builds plugin binaries for tests.
package plugintest

import (
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/internal/testbuf"
)

// Build compiles the main package pkg (an import path) into dir and
// returns the binary's path and SHA-256.
func Build(t testing.TB, dir, pkg string) (string, []byte) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command(goBin, "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, Sum(t, out)
}

// Sum returns the SHA-256 of a file.
func Sum(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// Logger returns a logger that writes to the test's log and to w (if
// not nil), for checking what a plugin logged.
func Logger(t testing.TB, w *SyncBuffer) hclog.Logger {
	tw := &testWriter{t: t}
	t.Cleanup(func() { tw.mu.Lock(); tw.done = true; tw.mu.Unlock() })
	out := io.Writer(tw)
	if w != nil {
		out = io.MultiWriter(out, w)
	}
	return hclog.New(&hclog.LoggerOptions{Name: "node", Level: hclog.Debug, Output: out})
}

// testWriter forwards to t.Log until the test ends (logging after that
// panics; plugin goroutines may still log).
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// SyncBuffer is a bytes.Buffer safe for the logger's goroutines.
type SyncBuffer = testbuf.Buffer
