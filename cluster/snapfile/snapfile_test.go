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

	"github.com/keyraft/keyraft/cluster/snapfile/snapfiletest"
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
	var names []string
	for _, e := range snapfiletest.Entries(t, b) {
		names = append(names, e.Name)
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
type entry = snapfiletest.Entry

func sumsOf(files ...entry) []byte {
	var b bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&b, "%x  %s\n", sha256.Sum256(f.Body), f.Name)
	}
	return b.Bytes()
}

func TestReadRefuses(t *testing.T) {
	state := testState(2000)
	metaJSON := []byte(`{"Version":1,"ID":"x","Index":7,"Term":2,"Size":2000}` + "\n")
	meta := entry{Name: MetaName, Body: metaJSON}
	st := entry{Name: StateName, Body: state}
	sums := entry{Name: SumsName, Body: sumsOf(meta, st)}
	sealed := entry{Name: SealedName, Body: []byte("opaque")}
	good := []entry{meta, st, sums, sealed}
	if _, _, err := readArchive(snapfiletest.Build(t, good, nil, nil), 1<<20); err != nil {
		t.Fatalf("the hand-made archive is refused: %v", err)
	}
	// Any order; padding of zeros after the tar (GNU tar's records).
	if _, _, err := readArchive(snapfiletest.Build(t, []entry{sealed, sums, st, meta}, make([]byte, 10240), nil), 1<<20); err != nil {
		t.Fatalf("entries in another order, padded: %v", err)
	}
	with := func(es ...entry) []entry { return es }
	otherState := entry{Name: StateName, Body: testState(2001)[1:]}
	big := entry{Name: SealedName, Body: make([]byte, MaxSmallEntry+1)}
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
		{"unknown file", snapfiletest.Build(t, append(with(entry{Name: "extra", Body: []byte("x")}), good...), nil, nil), 0, `unexpected file "extra"`},
		{"a path", snapfiletest.Build(t, with(entry{Name: "./state.bin", Body: state}, meta, sums), nil, nil), 0, "unexpected file"},
		{"duplicate", snapfiletest.Build(t, append(good, sealed), nil, nil), 0, "SHA256SUMS.sealed appears twice"},
		{"duplicate state", snapfiletest.Build(t, with(meta, st, st, sums), nil, nil), 0, "state.bin appears twice"},
		{"a directory", snapfiletest.Build(t, with(meta, entry{Name: StateName, Typeflag: tar.TypeDir}, sums), nil, nil), 0, "not a regular file"},
		{"a symlink", snapfiletest.Build(t, with(meta, entry{Name: StateName, Typeflag: tar.TypeSymlink}, sums), nil, nil), 0, "not a regular file"},
		{"no meta", snapfiletest.Build(t, with(st, sums, sealed), nil, nil), 0, "no meta.json"},
		{"no state", snapfiletest.Build(t, with(meta, sums, sealed), nil, nil), 0, "no state.bin"},
		{"no sums", snapfiletest.Build(t, with(meta, st, sealed), nil, nil), 0, "no SHA256SUMS"},
		{"state altered", snapfiletest.Build(t, with(meta, otherState, sums, sealed), nil, nil), 0, "SHA-256 of state.bin does not match"},
		{"sums of one file", snapfiletest.Build(t, with(meta, st, entry{Name: SumsName, Body: sumsOf(st)}), nil, nil), 0, "does not list meta.json"},
		{"sums of a third file", snapfiletest.Build(t, with(meta, st, entry{Name: SumsName, Body: sumsOf(meta, st, sealed)}), nil, nil), 0, "unknown file"},
		{"sums twice", snapfiletest.Build(t, with(meta, st, entry{Name: SumsName, Body: sumsOf(meta, st, st)}), nil, nil), 0, "twice"},
		{"sums without newline", snapfiletest.Build(t, with(meta, st, entry{Name: SumsName, Body: bytes.TrimSuffix(sumsOf(meta, st), []byte("\n"))}), nil, nil), 0, "newline"},
		{"sums with one space", snapfiletest.Build(t, with(meta, st, entry{Name: SumsName, Body: bytes.ReplaceAll(sumsOf(meta, st), []byte("  "), []byte(" "))}), nil, nil), 0, "malformed line"},
		{"sums short hash", snapfiletest.Build(t, with(meta, st, entry{Name: SumsName, Body: []byte("abcd  meta.json\n")}), nil, nil), 0, "malformed line"},
		{"meta not JSON", func() []byte {
			m := entry{Name: MetaName, Body: []byte("nope")}
			return snapfiletest.Build(t, with(m, st, entry{Name: SumsName, Body: sumsOf(m, st)}), nil, nil)
		}(), 0, "meta.json"},
		{"meta of another size", func() []byte {
			m := entry{Name: MetaName, Body: []byte(`{"Size":1999}`)}
			return snapfiletest.Build(t, with(m, st, entry{Name: SumsName, Body: sumsOf(m, st)}), nil, nil)
		}(), 0, "says 1999 bytes"},
		{"a small entry too big", snapfiletest.Build(t, with(meta, st, sums, big), nil, nil), 0, "more than 8192"},
		{"state too big", snapfiletest.Build(t, good, nil, nil), 1999, "state.bin of 2000 bytes, more than 1999"},
		{"data after the tar", snapfiletest.Build(t, good, []byte("\x00\x00junk"), nil), 0, "data after the end of the tar"},
		{"padding too long", snapfiletest.Build(t, good, make([]byte, maxPadding+4096), nil), 0, "bytes after the end of the tar"},
		{"data after the gzip stream", snapfiletest.Build(t, good, nil, []byte("x")), 0, "after the end of the gzip stream"},
		{"a second gzip member", snapfiletest.Build(t, good, nil, twoMembers.Bytes()), 0, "after the end of the gzip stream"},
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
	meta := entry{Name: MetaName, Body: []byte(`{"Size":3}`)}
	st := entry{Name: StateName, Body: []byte("abc")}
	f.Add(snapfiletest.Build(f, []entry{meta, st, {Name: SumsName, Body: sumsOf(meta, st)}}, nil, nil))
	f.Add(snapfiletest.Build(f, []entry{{Name: "x", Typeflag: tar.TypeDir}}, nil, nil))
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
