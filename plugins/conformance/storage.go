package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyraft/keyraft/plugins"
)

// OpenStorage opens a new, empty store for one test; it registers its
// own cleanup with t.
type OpenStorage func(t *testing.T) plugins.Storage

// TestStorage runs the storage contract checks, each on a new store.
func TestStorage(t *testing.T, open OpenStorage) {
	runStorage(testingT{t}, func(t T) plugins.Storage { return open(t.(testingT).T) })
}

// storageChecks are the storage contract checks, by name.
var storageChecks = []struct {
	name string
	fn   func(T, plugins.Storage)
}{
	{"GetMissing", storageGetMissing},
	{"PutGetOverwrite", storagePutGetOverwrite},
	{"EmptyValue", storageEmptyValue},
	{"EmptyKeyRejected", storageEmptyKeyRejected},
	{"UnknownKindRejected", storageUnknownKindRejected},
	{"ReturnedSliceIsCallers", storageReturnedSliceIsCallers},
	{"OrderedScan", storageOrderedScan},
	{"PrefixScan", storagePrefixScan},
	{"ScanFrom", storageScanFrom},
	{"ScanStopsOnError", storageScanStopsOnError},
	{"BatchInOrder", storageBatchInOrder},
	{"BatchAtomic", storageBatchAtomic},
	{"DeleteMissing", storageDeleteMissing},
	{"DeletePrefix", storageDeletePrefix},
	{"DeletePrefixAll", storageDeletePrefixAll},
	{"DeleteRange", storageDeleteRange},
	{"ViewConsistentWhileWriting", storageViewConsistent},
	{"ViewsIndependent", storageViewsIndependent},
	{"LargeValue", storageLargeValue},
	{"LargeBatch", storageLargeBatch},
	{"ManyKeysScan", storageManyKeysScan},
	{"Concurrent", storageConcurrent},
	{"HeadReader", storageHeadReader},
	{"Compact", storageCompact},
	{"Closed", storageClosed},
}

// runStorage runs every storage check under t, each on a store open
// returns for it.
func runStorage(t T, open func(T) plugins.Storage) {
	for _, tc := range storageChecks {
		t.Run(tc.name, func(t T) { tc.fn(t, open(t)) })
	}
}

func put(k, v string) plugins.Mutation {
	return plugins.Mutation{Kind: plugins.Put, Key: []byte(k), Value: []byte(v)}
}

func write(t T, s plugins.Storage, batch ...plugins.Mutation) {
	t.Helper()
	if err := s.Write(batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func get(t T, r plugins.Reader, k string) []byte {
	t.Helper()
	v, err := r.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return v
}

type kv struct{ k, v string }

func scanFrom(t T, r plugins.Reader, prefix, from string) []kv {
	t.Helper()
	var out []kv
	fn := func(k, v []byte) error {
		out = append(out, kv{string(k), string(v)})
		return nil
	}
	var err error
	if from == "" {
		err = r.Scan([]byte(prefix), fn)
	} else {
		err = r.ScanFrom([]byte(prefix), []byte(from), fn)
	}
	if err != nil {
		t.Fatalf("Scan(%q from %q): %v", prefix, from, err)
	}
	return out
}

func keysOf(kvs []kv) []string {
	out := make([]string, len(kvs))
	for i, p := range kvs {
		out[i] = p.k
	}
	return out
}

func wantKeys(t T, what string, got []kv, want ...string) {
	t.Helper()
	if g := keysOf(got); !slices.Equal(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Fatalf("%s: keys %q, want %q", what, g, want)
	}
}

func storageGetMissing(t T, s plugins.Storage) {
	if v := get(t, s, "nope"); v != nil {
		t.Fatalf("Get of a missing key = %q, want nil", v)
	}
}

func storagePutGetOverwrite(t T, s plugins.Storage) {
	write(t, s, put("a", "1"))
	if v := get(t, s, "a"); string(v) != "1" {
		t.Fatalf("Get = %q, want 1", v)
	}
	write(t, s, put("a", "2"))
	if v := get(t, s, "a"); string(v) != "2" {
		t.Fatalf("after overwrite Get = %q, want 2", v)
	}
	bin := string([]byte{0, 0xff, 0x80, '\n'})
	write(t, s, put(bin, bin))
	if v := get(t, s, bin); string(v) != bin {
		t.Fatalf("binary key: Get = %q", v)
	}
}

func storageEmptyValue(t T, s plugins.Storage) {
	write(t, s, plugins.Mutation{Kind: plugins.Put, Key: []byte("e")})
	v := get(t, s, "e")
	if v == nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %#v, want a non-nil empty slice", v)
	}
	if got := scanFrom(t, s, "", ""); len(got) != 1 || got[0].k != "e" || got[0].v != "" {
		t.Fatalf("scan = %q", got)
	}
}

func storageEmptyKeyRejected(t T, s plugins.Storage) {
	err := s.Write([]plugins.Mutation{put("ok", "1"), {Kind: plugins.Put, Key: nil, Value: []byte("x")}})
	if err == nil {
		t.Fatal("a Put with an empty key was accepted")
	}
	if v := get(t, s, "ok"); v != nil {
		t.Fatalf("batch with an empty key was partly applied: ok=%q", v)
	}
}

func storageUnknownKindRejected(t T, s plugins.Storage) {
	err := s.Write([]plugins.Mutation{put("ok", "1"), {Kind: 99, Key: []byte("k")}})
	if err == nil {
		t.Fatal("a mutation of unknown kind was accepted")
	}
	if v := get(t, s, "ok"); v != nil {
		t.Fatalf("batch with an unknown kind was partly applied: ok=%q", v)
	}
}

func storageReturnedSliceIsCallers(t T, s plugins.Storage) {
	write(t, s, put("a", "value"))
	v := get(t, s, "a")
	copy(v, "XXXXX")
	if v := get(t, s, "a"); string(v) != "value" {
		t.Fatalf("changing a returned slice changed the store: %q", v)
	}
	batch := []plugins.Mutation{put("b", "orig")}
	write(t, s, batch...)
	copy(batch[0].Value, "XXXX")
	if v := get(t, s, "b"); string(v) != "orig" {
		t.Fatalf("changing a written slice after Write changed the store: %q", v)
	}
}

func storageOrderedScan(t T, s plugins.Storage) {
	r := rand.New(rand.NewPCG(1, 2))
	want := map[string]string{}
	var batch []plugins.Mutation
	for i := 0; i < 500; i++ {
		k := make([]byte, 1+r.IntN(12))
		for j := range k {
			k[j] = byte(r.IntN(256))
		}
		v := fmt.Sprint(i)
		want[string(k)] = v
		batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: k, Value: []byte(v)})
	}
	write(t, s, batch...)
	got := scanFrom(t, s, "", "")
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys(t, "full scan", got, keys...)
	for _, p := range got {
		if want[p.k] != p.v {
			t.Fatalf("scan: %q = %q, want %q", p.k, p.v, want[p.k])
		}
	}
}

func storagePrefixScan(t T, s plugins.Storage) {
	write(t, s, put("k/b", "2"), put("k/a", "1"), put("k/c/x", "3"), put("k", "0"), put("k0", "x"), put("j/z", "y"), put("z", "4"))
	wantKeys(t, "prefix k/", scanFrom(t, s, "k/", ""), "k/a", "k/b", "k/c/x")
	wantKeys(t, "prefix k", scanFrom(t, s, "k", ""), "k", "k/a", "k/b", "k/c/x", "k0")
	wantKeys(t, "prefix none", scanFrom(t, s, "q", ""))
	wantKeys(t, "prefix longer than keys", scanFrom(t, s, "k/c/x/y", ""))
	prefix := string([]byte{0xff})
	write(t, s, put(prefix+"a", "1"), put(prefix+string([]byte{0xff, 0xff}), "2"))
	wantKeys(t, "prefix 0xff", scanFrom(t, s, prefix, ""), prefix+"a", prefix+string([]byte{0xff, 0xff}))
}

func storageScanFrom(t T, s plugins.Storage) {
	write(t, s, put("a", "-"), put("p/1", "1"), put("p/2", "2"), put("p/3", "3"), put("q", "-"))
	wantKeys(t, "from inside", scanFrom(t, s, "p/", "p/2"), "p/2", "p/3")
	wantKeys(t, "from between keys", scanFrom(t, s, "p/", "p/15"), "p/2", "p/3")
	wantKeys(t, "from before the prefix", scanFrom(t, s, "p/", "a"), "p/1", "p/2", "p/3")
	wantKeys(t, "from after the prefix", scanFrom(t, s, "p/", "p0"))
	wantKeys(t, "from after the last key", scanFrom(t, s, "p/", "p/4"))
	wantKeys(t, "no prefix", scanFrom(t, s, "", "p/3"), "p/3", "q")
}

func storageScanStopsOnError(t T, s plugins.Storage) {
	var batch []plugins.Mutation
	for i := 0; i < 2000; i++ {
		batch = append(batch, put(fmt.Sprintf("k%05d", i), "v"))
	}
	write(t, s, batch...)
	stop := errors.New("stop here")
	n := 0
	err := s.Scan([]byte("k"), func(k, v []byte) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Scan returned %v, want the callback's error", err)
	}
	if n != 3 {
		t.Fatalf("callback ran %d times after returning an error at 3", n)
	}
	// The store still works after an interrupted scan.
	if got := scanFrom(t, s, "k0000", ""); len(got) != 10 {
		t.Fatalf("scan after an interrupted one: %d keys", len(got))
	}
}

func storageBatchInOrder(t T, s plugins.Storage) {
	write(t, s, put("a", "1"), plugins.Mutation{Kind: plugins.Delete, Key: []byte("a")}, put("b", "1"), put("b", "2"))
	if v := get(t, s, "a"); v != nil {
		t.Fatalf("put then delete in one batch: a=%q", v)
	}
	if v := get(t, s, "b"); string(v) != "2" {
		t.Fatalf("two puts in one batch: b=%q, want the last", v)
	}
	write(t, s, plugins.Mutation{Kind: plugins.DeletePrefix, Key: []byte("b")}, put("b/x", "new"))
	wantKeys(t, "delete prefix then put", scanFrom(t, s, "b", ""), "b/x")
}

func storageBatchAtomic(t T, s plugins.Storage) {
	write(t, s, put("keep", "old"))
	err := s.Write([]plugins.Mutation{
		put("keep", "new"),
		put("added", "1"),
		{Kind: plugins.DeletePrefix, Key: []byte("")},
		{Kind: plugins.Put, Key: nil, Value: []byte("bad")},
	})
	if err == nil {
		t.Fatal("a batch with an invalid mutation was accepted")
	}
	if v := get(t, s, "keep"); string(v) != "old" {
		t.Fatalf("failed batch changed keep to %q", v)
	}
	if v := get(t, s, "added"); v != nil {
		t.Fatalf("failed batch added a key: %q", v)
	}
	if err := s.Write(nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}

func storageDeleteMissing(t T, s plugins.Storage) {
	write(t, s, plugins.Mutation{Kind: plugins.Delete, Key: []byte("missing")},
		plugins.Mutation{Kind: plugins.DeletePrefix, Key: []byte("missing/")},
		plugins.Mutation{Kind: plugins.DeleteRange, Key: []byte("m"), Value: []byte("n")})
}

func storageDeletePrefix(t T, s plugins.Storage) {
	write(t, s, put("k", "0"), put("k/a", "1"), put("k/b/c", "2"), put("k0", "3"), put("j", "4"))
	write(t, s, plugins.Mutation{Kind: plugins.DeletePrefix, Key: []byte("k/")})
	wantKeys(t, "after delete prefix k/", scanFrom(t, s, "", ""), "j", "k", "k0")
}

func storageDeletePrefixAll(t T, s plugins.Storage) {
	write(t, s, put("a", "1"), put("b", "2"), put(string([]byte{0}), "3"))
	write(t, s, plugins.Mutation{Kind: plugins.DeletePrefix, Key: nil})
	wantKeys(t, "after delete prefix nil", scanFrom(t, s, "", ""))
}

func storageDeleteRange(t T, s plugins.Storage) {
	write(t, s, put("a", "1"), put("b", "2"), put("b1", "3"), put("c", "4"), put("d", "5"))
	write(t, s, plugins.Mutation{Kind: plugins.DeleteRange, Key: []byte("b"), Value: []byte("c")})
	wantKeys(t, "after delete [b, c)", scanFrom(t, s, "", ""), "a", "c", "d")
	write(t, s, plugins.Mutation{Kind: plugins.DeleteRange, Key: []byte("d"), Value: []byte("a")})
	wantKeys(t, "after an empty range (start > end)", scanFrom(t, s, "", ""), "a", "c", "d")
	write(t, s, plugins.Mutation{Kind: plugins.DeleteRange, Key: []byte("c"), Value: []byte("c")})
	wantKeys(t, "after an empty range (start = end)", scanFrom(t, s, "", ""), "a", "c", "d")
	write(t, s, plugins.Mutation{Kind: plugins.DeleteRange, Key: []byte(""), Value: []byte("d")})
	wantKeys(t, "after delete [\"\", d)", scanFrom(t, s, "", ""), "d")
}

func storageViewConsistent(t T, s plugins.Storage) {
	var batch []plugins.Mutation
	for i := 0; i < 300; i++ {
		batch = append(batch, put(fmt.Sprintf("v/%04d", i), "before"))
	}
	write(t, s, batch...)
	view, err := s.View()
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	defer view.Close()

	stop := make(chan struct{})
	done := make(chan error, 1)
	var written atomic.Int64
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b := []plugins.Mutation{
				put(fmt.Sprintf("v/%04d", i%300), "after"),
				put(fmt.Sprintf("v/new%05d", i), "x"),
				{Kind: plugins.Delete, Key: []byte(fmt.Sprintf("v/%04d", (i+150)%300))},
			}
			if err := s.Write(b); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
	}()
	// Read the view at least 5 times, and until the writer has committed
	// at least 5 batches after the view was opened.
	deadline := time.Now().Add(30 * time.Second)
	for round := 0; round < 5 || (written.Load() < 5 && time.Now().Before(deadline)); round++ {
		n := 0
		err := view.Scan([]byte("v/"), func(k, v []byte) error {
			if string(v) != "before" {
				return fmt.Errorf("view saw %q = %q written after it was opened", k, v)
			}
			n++
			return nil
		})
		if err != nil {
			close(stop)
			t.Fatal(err)
		}
		if n != 300 {
			close(stop)
			t.Fatalf("view scan round %d saw %d keys, want 300", round, n)
		}
		if v := get(t, view, "v/0007"); string(v) != "before" {
			close(stop)
			t.Fatalf("view Get = %q", v)
		}
		wantKeys(t, "view ScanFrom", scanFrom(t, view, "v/", "v/0298"), "v/0298", "v/0299")
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if got := scanFrom(t, s, "v/new", ""); len(got) == 0 {
		t.Fatal("writes made while the view was open are missing from the store")
	}
	if err := view.Close(); err != nil {
		t.Fatalf("view Close: %v", err)
	}
}

func storageViewsIndependent(t T, s plugins.Storage) {
	write(t, s, put("a", "1"))
	v1, err := s.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v1.Close()
	write(t, s, put("a", "2"), put("b", "2"))
	v2, err := s.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	write(t, s, plugins.Mutation{Kind: plugins.DeletePrefix})
	wantKeys(t, "view 1", scanFrom(t, v1, "", ""), "a")
	wantKeys(t, "view 2", scanFrom(t, v2, "", ""), "a", "b")
	wantKeys(t, "store", scanFrom(t, s, "", ""))
	if v := get(t, v1, "a"); string(v) != "1" {
		t.Fatalf("view 1 a=%q", v)
	}
	if v := get(t, v2, "a"); string(v) != "2" {
		t.Fatalf("view 2 a=%q", v)
	}
}

func storageLargeValue(t T, s plugins.Storage) {
	big := make([]byte, 9<<20) // larger than gRPC's default 4 MiB message
	for i := range big {
		big[i] = byte(i * 7)
	}
	write(t, s, plugins.Mutation{Kind: plugins.Put, Key: []byte("big"), Value: big}, put("small", "s"))
	if v := get(t, s, "big"); !bytes.Equal(v, big) {
		t.Fatalf("large value: got %d bytes back, want %d equal bytes", len(v), len(big))
	}
	var n int
	if err := s.Scan(nil, func(k, v []byte) error {
		if string(k) == "big" && !bytes.Equal(v, big) {
			return fmt.Errorf("scan returned %d bytes for the large value", len(v))
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("scan saw %d keys, want 2", n)
	}
}

func storageLargeBatch(t T, s plugins.Storage) {
	// ~12 MiB in one atomic batch, with a bad mutation last: nothing may
	// be applied; then the same batch without it: all of it is.
	val := bytes.Repeat([]byte("v"), 4096)
	var batch []plugins.Mutation
	for i := 0; i < 3000; i++ {
		batch = append(batch, plugins.Mutation{Kind: plugins.Put, Key: []byte(fmt.Sprintf("lb/%05d", i)), Value: val})
	}
	bad := append(slices.Clone(batch), plugins.Mutation{Kind: plugins.Put})
	if err := s.Write(bad); err == nil {
		t.Fatal("a large batch with an empty key was accepted")
	}
	if got := scanFrom(t, s, "lb/", ""); len(got) != 0 {
		t.Fatalf("a failed large batch left %d keys", len(got))
	}
	write(t, s, batch...)
	if got := scanFrom(t, s, "lb/", ""); len(got) != 3000 {
		t.Fatalf("large batch: %d keys, want 3000", len(got))
	}
}

func storageManyKeysScan(t T, s plugins.Storage) {
	const n = 20000
	var batch []plugins.Mutation
	for i := 0; i < n; i++ {
		batch = append(batch, put(fmt.Sprintf("m/%06d", i), fmt.Sprint(i)))
	}
	write(t, s, batch...)
	i := 0
	if err := s.Scan([]byte("m/"), func(k, v []byte) error {
		if want := fmt.Sprintf("m/%06d", i); string(k) != want || string(v) != fmt.Sprint(i) {
			return fmt.Errorf("pair %d = %q=%q, want %q", i, k, v, want)
		}
		i++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Fatalf("scan saw %d keys, want %d", i, n)
	}
}

func storageConcurrent(t T, s plugins.Storage) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				k := fmt.Sprintf("c/%d/%03d", w, i)
				if err := s.Write([]plugins.Mutation{put(k, k)}); err != nil {
					errs <- err
					return
				}
				v, err := s.Get([]byte(k))
				if err != nil || string(v) != k {
					errs <- fmt.Errorf("Get(%q) = %q, %v", k, v, err)
					return
				}
				if err := s.Scan([]byte(fmt.Sprintf("c/%d/", w)), func(k, v []byte) error { return nil }); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := scanFrom(t, s, "c/", ""); len(got) != 200 {
		t.Fatalf("after concurrent writers: %d keys, want 200", len(got))
	}
}

func storageHeadReader(t T, s plugins.Storage) {
	hr, ok := s.(plugins.HeadReader)
	if !ok {
		t.Skip("the store does not implement plugins.HeadReader")
	}
	write(t, s, put("h", "0123456789"))
	for _, c := range []struct {
		n    int
		want string
	}{{4, "0123"}, {10, "0123456789"}, {100, "0123456789"}, {0, ""}} {
		v, err := hr.GetHead([]byte("h"), c.n)
		if err != nil || string(v) != c.want {
			t.Fatalf("GetHead(%d) = %q, %v; want %q", c.n, v, err, c.want)
		}
	}
	if v, err := hr.GetHead([]byte("missing"), 4); err != nil || v != nil {
		t.Fatalf("GetHead of a missing key = %q, %v", v, err)
	}
}

func storageClosed(t T, s plugins.Storage) {
	write(t, s, put("a", "1"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Get([]byte("a")); !errors.Is(err, plugins.ErrStorageClosed) {
		t.Fatalf("Get after Close: %v, want ErrStorageClosed", err)
	}
	if err := s.Write([]plugins.Mutation{put("b", "2")}); !errors.Is(err, plugins.ErrStorageClosed) {
		t.Fatalf("Write after Close: %v, want ErrStorageClosed", err)
	}
	if err := s.Scan(nil, func(k, v []byte) error { return nil }); !errors.Is(err, plugins.ErrStorageClosed) {
		t.Fatalf("Scan after Close: %v, want ErrStorageClosed", err)
	}
	if _, err := s.View(); !errors.Is(err, plugins.ErrStorageClosed) {
		t.Fatalf("View after Close: %v, want ErrStorageClosed", err)
	}
}

// compactor returns the store's Compactor, skipping the check when it has
// none (or, behind a plugin host, the backend answers ErrUnsupported).
func compactor(t T, s plugins.Storage) plugins.Compactor {
	c, ok := s.(plugins.Compactor)
	if !ok {
		t.Skip("the store does not implement plugins.Compactor")
	}
	if err := c.Compact(); errors.Is(err, plugins.ErrUnsupported) {
		t.Skip("the store does not support Compact")
	} else if err != nil {
		t.Fatalf("Compact of an empty store: %v", err)
	}
	return c
}

// storageCompact: Compact keeps every live record and drops deleted
// ones; a view opened before it stays readable while it runs (Compact
// may wait for the view to close, as bbolt's does).
func storageCompact(t T, s plugins.Storage) {
	c := compactor(t, s)
	var batch []plugins.Mutation
	for i := 0; i < 200; i++ {
		batch = append(batch, put(fmt.Sprintf("keep/%03d", i), fmt.Sprint("keep-", i)), put(fmt.Sprintf("gone/%03d", i), "gone"))
	}
	write(t, s, batch...)
	view, err := s.View()
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, plugins.Mutation{Kind: plugins.DeletePrefix, Key: []byte("gone/")}, put("keep/000", "new"))
	compacted := make(chan error, 1)
	go func() { compacted <- c.Compact() }()
	read := make(chan error, 1)
	go func() {
		var n int
		err := view.Scan(nil, func(k, v []byte) error { n++; return nil })
		if err == nil && n != 400 {
			err = fmt.Errorf("it sees %d keys, want the 400 it had", n)
		}
		if err == nil {
			var v []byte
			if v, err = view.Get([]byte("keep/000")); err == nil && string(v) != "keep-0" {
				err = fmt.Errorf("it reads keep/000 = %q, want keep-0", v)
			}
		}
		if cerr := view.Close(); err == nil {
			err = cerr
		}
		read <- err
	}()
	select {
	case err := <-read:
		if err != nil {
			t.Fatalf("a view opened before Compact: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("reading a view opened before Compact waits for Compact (which may wait for the view: deadlock)")
	}
	select {
	case err := <-compacted:
		if err != nil {
			t.Fatalf("Compact: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Compact did not return within 2 minutes of the last view closing")
	}
	if got := scanFrom(t, s, "gone/", ""); len(got) != 0 {
		t.Fatalf("after Compact, %d deleted keys are back", len(got))
	}
	got := scanFrom(t, s, "keep/", "")
	if len(got) != 200 || got[0].v != "new" || got[199].v != "keep-199" {
		t.Fatalf("after Compact: %d live keys (want 200), first %q", len(got), got[:min(len(got), 1)])
	}
	write(t, s, put("after", "1"))
	if v := get(t, s, "after"); string(v) != "1" {
		t.Fatalf("a write after Compact: %q", v)
	}
}
