// Package snapfiletest makes snapshot archives for tests: hand-made
// ones, well-formed or not, and edits of real ones (an entry altered,
// left out or taken out), for the tests of what reads them (snapfile,
// the HTTP API, the CLI, e2e).
package snapfiletest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

// Entry is one file of an archive.
type Entry struct {
	Name string
	Body []byte
	// Typeflag is the tar type; 0 is a regular file. Other types are
	// written without a body.
	Typeflag byte
}

// Build is a gzip stream of a tar of entries, in order; tail follows the
// tar inside the gzip stream, and after follows the gzip stream.
func Build(t testing.TB, entries []Entry, tail, after []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Typeflag: e.Typeflag, Name: e.Name, Mode: 0o600}
		if h.Typeflag == 0 || h.Typeflag == tar.TypeReg {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(e.Body)
		}
	}
	tw.Close()
	zw.Write(tail)
	zw.Close()
	return append(b.Bytes(), after...)
}

// Entries are the files of a gzip'd tar, in order, unchecked.
func Entries(t testing.TB, archive []byte) []Entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []Entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Entry{Name: h.Name, Body: body, Typeflag: h.Typeflag})
	}
}

// Rewrite is archive with each file's body replaced by edit(name, body);
// a file edit returns nil for is left out.
func Rewrite(t testing.TB, archive []byte, edit func(name string, body []byte) []byte) []byte {
	t.Helper()
	var out []Entry
	for _, e := range Entries(t, archive) {
		if e.Body = edit(e.Name, e.Body); e.Body != nil {
			out = append(out, e)
		}
	}
	return Build(t, out, nil, nil)
}

// Body is the body of the file name in archive, or nil.
func Body(t testing.TB, archive []byte, name string) []byte {
	t.Helper()
	for _, e := range Entries(t, archive) {
		if e.Name == name {
			return e.Body
		}
	}
	return nil
}
