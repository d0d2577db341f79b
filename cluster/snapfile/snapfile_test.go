package snapfile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// The tests seal with a stand-in for the keyring: the package never looks
// inside SHA256SUMS.sealed.
var sealPrefix = []byte("sealed-by-test:")

func testSeal(sums []byte) ([]byte, error) { return append(bytes.Clone(sealPrefix), sums...), nil }

func testOpen(sealed []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(sealed, sealPrefix)
	if !ok {
		return nil, errors.New("not sealed by the test")
	}
	return rest, nil
}

func testState(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testMeta(size int) *raft.SnapshotMeta {
	m := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, ID: "2-7-1700000000000", Index: 7, Term: 2, Size: int64(size), ConfigurationIndex: 3}
	for i := 1; i <= 5; i++ {
		m.Configuration.Servers = append(m.Configuration.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprintf("node-%d", i)), Address: raft.ServerAddress(fmt.Sprintf("10.0.0.%d:8201", i)),
		})
	}
	return m
}

func writeArchive(t testing.TB, state []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, testMeta(len(state)), bytes.NewReader(state), testSeal); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// readArchive reads b, returning state.bin.
func readArchive(b []byte, maxState int64) (*Archive, []byte, error) {
	var state bytes.Buffer
	a, err := Read(bytes.NewReader(b), maxState, func(r io.Reader) error {
		_, err := io.Copy(&state, r)
		return err
	})
	return a, state.Bytes(), err
}

func TestRoundTrip(t *testing.T) {
	state := testState(300 << 10) // several gzip stored blocks
	b := writeArchive(t, state)
	if !IsArchive(b) {
		t.Fatal("the archive does not start with gzip's magic")
	}
	a, got, err := readArchive(b, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, state) || a.StateSize != int64(len(state)) {
		t.Fatalf("state.bin: %d bytes back of %d", len(got), len(state))
	}
	if a.Meta.Index != 7 || a.Meta.Term != 2 || len(a.Meta.Configuration.Servers) != 5 {
		t.Fatalf("meta: %+v", a.Meta)
	}
	sums, err := testOpen(a.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(sums); err != nil {
		t.Fatal(err)
	}
	if err := a.Verify([]byte(strings.Replace(string(sums), "meta.json", "other", 1))); !errors.Is(err, ErrFormat) {
		t.Fatalf("Verify of altered sums: %v", err)
	}

	// The shape the vault/api client checks: gzip, tar, a non-empty
	// SHA256SUMS.sealed, after state.bin; and stored, not compressed.
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Mode != 0o600 {
			t.Errorf("%s has mode %o", h.Name, h.Mode)
		}
	}
	if strings.Join(names, ",") != "meta.json,state.bin,SHA256SUMS,SHA256SUMS.sealed" {
		t.Fatalf("entries %v", names)
	}
	if len(b) < len(state) {
		t.Fatalf("the archive (%d bytes) is compressed (state %d bytes)", len(b), len(state))
	}
}

func TestWriteRefusesAStateOfAnotherSize(t *testing.T) {
	state := testState(1000)
	for _, size := range []int{999, 1001} {
		if err := Write(io.Discard, testMeta(size), bytes.NewReader(state), testSeal); err == nil {
			t.Errorf("meta size %d for a state of 1000 bytes: no error", size)
		}
	}
	failing := func([]byte) ([]byte, error) { return nil, errors.New("sealed") }
	if err := Write(io.Discard, testMeta(1000), bytes.NewReader(state), failing); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Errorf("a seal that fails: %v", err)
	}
}

// entry is one file of a hand-made archive.
type entry struct {
	name string
	body []byte
	typ  byte // 0: regular
}

// build makes an archive of entries, then appends tail inside the gzip
// stream after the tar and after inside the file after the gzip stream.
func build(t testing.TB, entries []entry, tail, after []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Typeflag: typ, Name: e.name, Size: int64(len(e.body)), Mode: 0o600}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write(e.body)
		}
	}
	tw.Close()
	zw.Write(tail)
	zw.Close()
	return append(b.Bytes(), after...)
}

func sumsOf(files ...entry) []byte {
	var b bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&b, "%x  %s\n", sha256.Sum256(f.body), f.name)
	}
	return b.Bytes()
}

func TestReadRefuses(t *testing.T) {
	state := testState(2000)
	metaJSON := []byte(`{"Version":1,"ID":"x","Index":7,"Term":2,"Size":2000}` + "\n")
	meta := entry{name: MetaName, body: metaJSON}
	st := entry{name: StateName, body: state}
	sums := entry{name: SumsName, body: sumsOf(meta, st)}
	sealed := entry{name: SealedName, body: []byte("opaque")}
	good := []entry{meta, st, sums, sealed}
	if _, _, err := readArchive(build(t, good, nil, nil), 1<<20); err != nil {
		t.Fatalf("the hand-made archive is refused: %v", err)
	}
	// Any order; padding of zeros after the tar (GNU tar's records).
	if _, _, err := readArchive(build(t, []entry{sealed, sums, st, meta}, make([]byte, 10240), nil), 1<<20); err != nil {
		t.Fatalf("entries in another order, padded: %v", err)
	}
	with := func(es ...entry) []entry { return es }
	otherState := entry{name: StateName, body: testState(2001)[1:]}
	big := entry{name: SealedName, body: make([]byte, MaxSmallEntry+1)}
	var twoMembers bytes.Buffer
	zw := gzip.NewWriter(&twoMembers)
	zw.Write([]byte("more"))
	zw.Close()
	for _, c := range []struct {
		name  string
		b     []byte
		max   int64
		error string
	}{
		{"not gzip", []byte("keyraft-fsm-snapshot-v1\n\x00"), 0, "gzip header"},
		{"empty", nil, 0, "gzip header"},
		{"unknown file", build(t, append(with(entry{name: "extra", body: []byte("x")}), good...), nil, nil), 0, `unexpected file "extra"`},
		{"a path", build(t, with(entry{name: "./state.bin", body: state}, meta, sums), nil, nil), 0, "unexpected file"},
		{"duplicate", build(t, append(good, sealed), nil, nil), 0, "SHA256SUMS.sealed appears twice"},
		{"duplicate state", build(t, with(meta, st, st, sums), nil, nil), 0, "state.bin appears twice"},
		{"a directory", build(t, with(meta, entry{name: StateName, typ: tar.TypeDir}, sums), nil, nil), 0, "not a regular file"},
		{"a symlink", build(t, with(meta, entry{name: StateName, typ: tar.TypeSymlink}, sums), nil, nil), 0, "not a regular file"},
		{"no meta", build(t, with(st, sums, sealed), nil, nil), 0, "no meta.json"},
		{"no state", build(t, with(meta, sums, sealed), nil, nil), 0, "no state.bin"},
		{"no sums", build(t, with(meta, st, sealed), nil, nil), 0, "no SHA256SUMS"},
		{"state altered", build(t, with(meta, otherState, sums, sealed), nil, nil), 0, "SHA-256 of state.bin does not match"},
		{"sums of one file", build(t, with(meta, st, entry{name: SumsName, body: sumsOf(st)}), nil, nil), 0, "does not list meta.json"},
		{"sums of a third file", build(t, with(meta, st, entry{name: SumsName, body: sumsOf(meta, st, sealed)}), nil, nil), 0, "unknown file"},
		{"sums twice", build(t, with(meta, st, entry{name: SumsName, body: sumsOf(meta, st, st)}), nil, nil), 0, "twice"},
		{"sums without newline", build(t, with(meta, st, entry{name: SumsName, body: bytes.TrimSuffix(sumsOf(meta, st), []byte("\n"))}), nil, nil), 0, "newline"},
		{"sums with one space", build(t, with(meta, st, entry{name: SumsName, body: bytes.ReplaceAll(sumsOf(meta, st), []byte("  "), []byte(" "))}), nil, nil), 0, "malformed line"},
		{"sums short hash", build(t, with(meta, st, entry{name: SumsName, body: []byte("abcd  meta.json\n")}), nil, nil), 0, "malformed line"},
		{"meta not JSON", func() []byte {
			m := entry{name: MetaName, body: []byte("nope")}
			return build(t, with(m, st, entry{name: SumsName, body: sumsOf(m, st)}), nil, nil)
		}(), 0, "meta.json"},
		{"meta of another size", func() []byte {
			m := entry{name: MetaName, body: []byte(`{"Size":1999}`)}
			return build(t, with(m, st, entry{name: SumsName, body: sumsOf(m, st)}), nil, nil)
		}(), 0, "says 1999 bytes"},
		{"a small entry too big", build(t, with(meta, st, sums, big), nil, nil), 0, "more than 8192"},
		{"state too big", build(t, good, nil, nil), 1999, "state.bin of 2000 bytes, more than 1999"},
		{"data after the tar", build(t, good, []byte("\x00\x00junk"), nil), 0, "data after the end of the tar"},
		{"padding too long", build(t, good, make([]byte, maxPadding+4096), nil), 0, "bytes after the end of the tar"},
		{"data after the gzip stream", build(t, good, nil, []byte("x")), 0, "after the end of the gzip stream"},
		{"a second gzip member", build(t, good, nil, twoMembers.Bytes()), 0, "after the end of the gzip stream"},
	} {
		t.Run(c.name, func(t *testing.T) {
			maxState := c.max
			if maxState == 0 {
				maxState = 1 << 20
			}
			_, _, err := readArchive(c.b, maxState)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.error) {
				t.Fatalf("got %v, want ErrFormat with %q", err, c.error)
			}
		})
	}
}

// A cut anywhere, or a changed byte past gzip's unchecked header fields,
// is refused.
func TestReadRefusesTruncatedAndAltered(t *testing.T) {
	b := writeArchive(t, testState(200<<10))
	r := rand.New(rand.NewPCG(3, 4))
	cuts := []int{0, 1, 9, 10, 100, 511, 512, 1024, len(b) / 2, len(b) - 1024, len(b) - 100, len(b) - 9, len(b) - 8, len(b) - 4, len(b) - 1}
	for range 200 {
		cuts = append(cuts, r.IntN(len(b)))
	}
	for _, n := range cuts {
		if _, _, err := readArchive(b[:n], 1<<30); !errors.Is(err, ErrFormat) {
			t.Fatalf("archive cut at %d of %d bytes: %v", n, len(b), err)
		}
	}
	// Bytes 4-9 of a gzip header (time, flags, OS) are not checked by
	// gzip; everything after them is.
	for range 300 {
		i := 10 + r.IntN(len(b)-10)
		c := bytes.Clone(b)
		c[i] ^= 1 << r.IntN(8)
		if _, _, err := readArchive(c, 1<<30); !errors.Is(err, ErrFormat) {
			t.Fatalf("byte %d of %d changed: %v", i, len(b), err)
		}
	}
}

type sourceError struct{}

func (sourceError) Error() string { return "the connection broke" }

func TestReadErrors(t *testing.T) {
	b := writeArchive(t, testState(100<<10))
	// What the state callback returns comes back as it is.
	mine := errors.New("disk full")
	_, err := Read(bytes.NewReader(b), 1<<30, func(r io.Reader) error {
		io.CopyN(io.Discard, r, 10)
		return mine
	})
	if err != mine {
		t.Fatalf("the callback's error: %v", err)
	}
	// A source that fails: ErrFormat and the source's error.
	src := io.MultiReader(bytes.NewReader(b[:len(b)/2]), iotestErr{})
	_, err = Read(src, 1<<30, func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err })
	var se sourceError
	if !errors.Is(err, ErrFormat) || !errors.As(err, &se) {
		t.Fatalf("a failing source: %v", err)
	}
	// A callback that stops early: the rest of state.bin is still read
	// and hashed.
	if _, err := Read(bytes.NewReader(b), 1<<30, func(r io.Reader) error { return nil }); err != nil {
		t.Fatalf("a callback that reads nothing: %v", err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, sourceError{} }

// FuzzRead: Read never panics, and what it accepts reads the same again.
// Run: go test ./cluster/snapfile -run '^$' -fuzz FuzzRead -fuzztime 60s
func FuzzRead(f *testing.F) {
	good := writeArchive(f, testState(3000))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:len(good)-4])
	f.Add([]byte("keyraft-fsm-snapshot-v1\n\x00"))
	f.Add([]byte{0x1f, 0x8b})
	meta := entry{name: MetaName, body: []byte(`{"Size":3}`)}
	st := entry{name: StateName, body: []byte("abc")}
	f.Add(build(f, []entry{meta, st, {name: SumsName, body: sumsOf(meta, st)}}, nil, nil))
	f.Add(build(f, []entry{{name: "x", typ: tar.TypeDir}}, nil, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, state, err := readArchive(b, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("an error that is not ErrFormat: %v", err)
			}
			return
		}
		if int64(len(state)) != a.StateSize || a.Meta.Size != a.StateSize {
			t.Fatalf("state.bin %d bytes, header %d, meta %d", len(state), a.StateSize, a.Meta.Size)
		}
		a2, state2, err := readArchive(b, 1<<20)
		if err != nil || !bytes.Equal(state, state2) || !bytes.Equal(a.Sealed, a2.Sealed) {
			t.Fatalf("read again: %v", err)
		}
	})
}
