package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestProgressLine: on a terminal the line is rewritten in place, at most
// every 100 ms, with the share done when the total is known, and erased
// at the end.
func TestProgressLine(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(0, 0)
	p := &progress{w: &out, label: "Restoring the snapshot", total: 2 << 20, now: func() time.Time { return clock }}
	r := p.reader(bytes.NewReader(make([]byte, 2<<20)))
	buf := make([]byte, 512<<10)
	for { // a read every 60 ms
		clock = clock.Add(60 * time.Millisecond)
		if _, err := r.Read(buf); err == io.EOF {
			break
		}
	}
	p.done()
	want := "\rRestoring the snapshot: 512.0 KiB of 2.0 MiB (25%)\x1b[K" +
		"\rRestoring the snapshot: 1.5 MiB of 2.0 MiB (75%)\x1b[K" +
		"\rRestoring the snapshot: 2.0 MiB of 2.0 MiB (100%)\x1b[K" + // at EOF, 120 ms on
		"\r\x1b[K"
	if out.String() != want {
		t.Errorf("progress output\n%q\nwant\n%q", out.String(), want)
	}
	if got := byteSize(3 << 30); got != "3.0 GiB" {
		t.Errorf("byteSize: %s", got)
	}
}

// TestNoProgressOffATerminal: a pipe or a buffer gets no progress line.
func TestNoProgressOffATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, stderr := range []io.Writer{&bytes.Buffer{}, w} {
		e := &env{stderr: stderr, getenv: func(string) string { return "" }}
		p := e.progress("x", 10)
		if p != nil {
			t.Fatalf("a progress line on %T", stderr)
		}
		in := strings.NewReader("data")
		if p.reader(in) != io.Reader(in) {
			t.Fatal("a nil progress wraps the reader")
		}
		p.done()
	}
}

// TestIntegrationSnapshotCLI: snapshot save and restore from the CLI; in
// a pipe they print their one line each and no progress.
func TestIntegrationSnapshotCLI(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "kept")
	ct := s.ok(t, []byte("before"), "encrypt", "kept")
	file := filepath.Join(t.TempDir(), "backup.snap")
	out, errOut, code := s.kr(t, nil, nil, "operator", "raft", "snapshot", "save", file)
	if code != 0 || len(out) != 0 || !regexp.MustCompile(`^Saved a snapshot of \d+ bytes to .*backup\.snap\.\n$`).MatchString(errOut) {
		t.Fatalf("snapshot save: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	s.ok(t, nil, "keys", "create", "later")
	if out := string(s.ok(t, nil, "operator", "raft", "snapshot", "restore", file)); out != "Success! Restored the snapshot. The node is sealed: unseal it with the snapshot's unseal keys.\n" {
		t.Fatalf("snapshot restore: %q", out)
	}
	s.ok(t, []byte(s.unsealKey), "operator", "unseal")
	if got := string(s.ok(t, ct, "decrypt", "kept")); got != "before" {
		t.Fatalf("decrypt after the restore: %q", got)
	}
	if _, _, code := s.kr(t, nil, nil, "keys", "read", "later"); code != 1 {
		t.Fatalf("a key made after the snapshot survived its restore: exit %d", code)
	}
}
