package fsm

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/plugins/bolt"
)

func newFSM(t testing.TB) (*FSM, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fsm.db")
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	return f, path
}

func entry(t testing.TB, index uint64, c *Command) *raft.Log {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: b}
}

func put(k, v string) Op { return Op{Kind: OpPut, Key: k, Value: []byte(v)} }

func mustGet(t *testing.T, f *FSM, k string) (string, uint64) {
	t.Helper()
	v, rev, err := f.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(v), rev
}

func TestApplyConditionsAndRevisions(t *testing.T) {
	f, _ := newFSM(t)
	res := f.Apply(entry(t, 1, &Command{Conds: []Cond{{Key: "k/a", Revision: 0}}, Ops: []Op{put("k/a", "1"), put("k/b", "2")}})).(*Result)
	if res.Err != nil || res.Index != 1 {
		t.Fatalf("create: %+v", res)
	}
	if v, rev := mustGet(t, f, "k/a"); v != "1" || rev != 1 {
		t.Fatalf("k/a = %q@%d", v, rev)
	}
	// A stale precondition writes nothing.
	res = f.Apply(entry(t, 2, &Command{Conds: []Cond{{Key: "k/a", Revision: 0}}, Ops: []Op{put("k/a", "x"), put("k/c", "3")}})).(*Result)
	var ce *ConflictError
	if !errors.As(res.Err, &ce) || ce.Key != "k/a" || !errors.Is(res.Err, ErrConflict) {
		t.Fatalf("stale create: %v", res.Err)
	}
	if v, _ := mustGet(t, f, "k/c"); v != "" {
		t.Fatal("conflicting command wrote k/c")
	}
	if f.AppliedIndex() != 2 {
		t.Fatalf("applied = %d after a conflict", f.AppliedIndex())
	}
	res = f.Apply(entry(t, 3, &Command{Conds: []Cond{{Key: "k/a", Revision: 1}}, Ops: []Op{put("k/a", "updated"), {Kind: OpDelete, Key: "k/b"}}})).(*Result)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if v, rev := mustGet(t, f, "k/a"); v != "updated" || rev != 3 {
		t.Fatalf("k/a = %q@%d", v, rev)
	}
	if v, rev := mustGet(t, f, "k/b"); v != "" || rev != 0 {
		t.Fatal("k/b survived its delete")
	}
	f.Apply(entry(t, 4, &Command{Ops: []Op{{Kind: OpDeletePrefix, Key: "k/"}, put("z", "1")}}))
	n := 0
	f.Scan("k/", func(string, []byte, uint64) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d records left under k/", n)
	}
	// Malformed data is an error result on every node, not a crash.
	res = f.Apply(&raft.Log{Index: 5, Type: raft.LogCommand, Data: []byte{9, 9}}).(*Result)
	if !errors.Is(res.Err, ErrMalformed) {
		t.Fatalf("malformed entry: %v", res.Err)
	}
}

func TestApplyBatchSeesEarlierEntries(t *testing.T) {
	f, _ := newFSM(t)
	out := f.ApplyBatch([]*raft.Log{
		entry(t, 1, &Command{Conds: []Cond{{Key: "a", Revision: 0}}, Ops: []Op{put("a", "1")}}),
		entry(t, 2, &Command{Conds: []Cond{{Key: "a", Revision: 0}}, Ops: []Op{put("a", "2")}}), // loses
		entry(t, 3, &Command{Conds: []Cond{{Key: "a", Revision: 1}}, Ops: []Op{put("a", "3")}}), // wins
		entry(t, 4, &Command{Ops: []Op{{Kind: OpDeletePrefix, Key: "a"}}}),
		entry(t, 5, &Command{Conds: []Cond{{Key: "a", Revision: 0}}, Ops: []Op{put("a", "5")}}),
	})
	wantErr := []bool{false, true, false, false, false}
	for i, r := range out {
		if (r.(*Result).Err != nil) != wantErr[i] {
			t.Fatalf("entry %d: err = %v", i+1, r.(*Result).Err)
		}
	}
	if v, rev := mustGet(t, f, "a"); v != "5" || rev != 5 {
		t.Fatalf("a = %q@%d", v, rev)
	}
}

func TestRestartSkipsAppliedEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fsm.db")
	st, _ := bolt.Open(path)
	f, _ := New(st)
	f.Apply(entry(t, 1, &Command{Ops: []Op{put("a", "1")}}))
	f.Apply(entry(t, 2, &Command{Conds: []Cond{{Key: "a", Revision: 1}}, Ops: []Op{put("a", "2")}}))
	st.Close()

	st, _ = bolt.Open(path)
	defer st.Close()
	f, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	if f.AppliedIndex() != 2 {
		t.Fatalf("applied after reopen = %d", f.AppliedIndex())
	}
	// Raft replays entries after its snapshot; those must not apply twice.
	res := f.Apply(entry(t, 1, &Command{Ops: []Op{put("a", "1")}})).(*Result)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if v, rev := mustGet(t, f, "a"); v != "2" || rev != 2 {
		t.Fatalf("replay changed state: a = %q@%d", v, rev)
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestSnapshotRestore(t *testing.T) {
	src, _ := newFSM(t)
	src.Apply(entry(t, 1, &Command{Ops: []Op{put("k/a", "1"), put("k/b", string(bytes.Repeat([]byte{7}, 5000)))}}))
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after Snapshot() are not in the snapshot.
	src.Apply(entry(t, 2, &Command{Ops: []Op{put("k/c", "3")}}))
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst, _ := newFSM(t)
	dst.Apply(entry(t, 1, &Command{Ops: []Op{put("old", "gone")}}))
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if v, _ := mustGet(t, dst, "old"); v != "" {
		t.Fatal("restore kept a record the snapshot does not have")
	}
	if v, rev := mustGet(t, dst, "k/a"); v != "1" || rev != 1 {
		t.Fatalf("k/a = %q@%d", v, rev)
	}
	if v, _ := mustGet(t, dst, "k/c"); v != "" {
		t.Fatal("snapshot holds a write made after it was taken")
	}
	if dst.AppliedIndex() != 1 {
		t.Fatalf("applied = %d", dst.AppliedIndex())
	}

	// A truncated snapshot is refused and leaves the store as it was.
	dst.Apply(entry(t, 2, &Command{Ops: []Op{put("keep", "1")}}))
	trunc := sink.Bytes()[:sink.Len()-10]
	if err := dst.Restore(io.NopCloser(bytes.NewReader(trunc))); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated snapshot: %v", err)
	}
	if v, _ := mustGet(t, dst, "keep"); v != "1" {
		t.Fatal("failed restore changed the store")
	}
}

func TestWaitApplied(t *testing.T) {
	f, _ := newFSM(t)
	ch := f.WaitApplied(2)
	f.Apply(entry(t, 1, &Command{Ops: []Op{put("a", "1")}}))
	select {
	case <-ch:
		t.Fatal("woke before index 2")
	default:
	}
	f.Apply(entry(t, 2, &Command{Ops: []Op{put("a", "2")}}))
	<-ch // closed by now; a hang here fails by test timeout
	select {
	case <-f.WaitApplied(1):
	default:
		t.Fatal("past index did not return a closed channel")
	}
}

func TestEncodeRejectsReservedAndEmpty(t *testing.T) {
	for name, c := range map[string]*Command{
		"no ops":   {},
		"reserved": {Ops: []Op{put("\x00applied", "x")}},
		"empty":    {Ops: []Op{put("", "x")}},
		"kind":     {Ops: []Op{{Kind: 9, Key: "a"}}},
		"del+val":  {Ops: []Op{{Kind: OpDelete, Key: "a", Value: []byte("x")}}},
	} {
		if _, err := c.Encode(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	good, _ := (&Command{Conds: []Cond{{Key: "a", Revision: 3}}, Ops: []Op{put("a", "v"), {Kind: OpDelete, Key: "b"}}}).Encode()
	f.Add(good)
	f.Add([]byte{1, 0, 1, 1, 1, 'a', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		again, err := c.Encode()
		if err != nil {
			t.Fatalf("decoded command does not re-encode: %v", err)
		}
		c2, err := DecodeCommand(again)
		if err != nil || len(c2.Ops) != len(c.Ops) || len(c2.Conds) != len(c.Conds) {
			t.Fatalf("round trip changed the command")
		}
	})
}

func FuzzRestore(f *testing.F) {
	src, _ := newFSM(f)
	src.Apply(entry(f, 1, &Command{Ops: []Op{put("k/a", "1")}}))
	snap, _ := src.Snapshot()
	var sink memSink
	snap.Persist(&sink)
	snap.Release()
	f.Add(sink.Bytes())
	dst, _ := newFSM(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := dst.Restore(io.NopCloser(bytes.NewReader(b))); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error not ErrMalformed: %v", err)
		}
	})
}

func BenchmarkApply(b *testing.B) {
	f, _ := newFSM(b)
	val := bytes.Repeat([]byte{1}, 256)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.Apply(entry(b, uint64(i+1), &Command{Ops: []Op{{Kind: OpPut, Key: "bench/key", Value: val}}}))
	}
}

func BenchmarkApplyBatch64(b *testing.B) {
	f, _ := newFSM(b)
	val := bytes.Repeat([]byte{1}, 256)
	idx := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		logs := make([]*raft.Log, 64)
		for j := range logs {
			idx++
			logs[j] = entry(b, idx, &Command{Ops: []Op{{Kind: OpPut, Key: "bench/key", Value: val}}})
		}
		f.ApplyBatch(logs)
	}
}

func TestRevisionReadsOnlyTheHeader(t *testing.T) {
	f, _ := newFSM(t)
	f.Apply(entry(t, 7, &Command{Ops: []Op{put("big", string(bytes.Repeat([]byte{1}, 1<<16)))}}))
	if rev, err := f.Revision("big"); err != nil || rev != 7 {
		t.Fatalf("Revision = %d, %v", rev, err)
	}
	if rev, err := f.Revision("absent"); err != nil || rev != 0 {
		t.Fatalf("absent: %d, %v", rev, err)
	}
}

func TestFailedCheckpointWritesNothing(t *testing.T) {
	f, _ := newFSM(t)
	cp := []byte(`{"seq":1,"hash":"` + strings.Repeat("ab", 32) + `","time":"2026-01-01T00:00:00Z","signature":"AAAA"}`)
	res := f.Apply(entry(t, 1, &Command{Ops: []Op{put("side", "effect")}, Checkpoint: cp})).(*Result)
	if !errors.Is(res.Err, ErrBadCheckpoint) {
		t.Fatalf("bad checkpoint: %v", res.Err)
	}
	if v, _ := mustGet(t, f, "side"); v != "" {
		t.Fatal("a failed checkpoint entry wrote its ops")
	}
}

func craftedSnapshot(records ...[2][]byte) []byte {
	b := append([]byte(nil), snapshotMagic...)
	for _, r := range records {
		b = appendBytes(appendBytes(b, r[0]), r[1])
	}
	return append(b, 0)
}

// A snapshot that would fail inside Restore (fatal inside Raft) or wrap
// Raft's index must fail validation instead.
func TestValidateSnapshotRefusesWhatRestoreWouldChokeOn(t *testing.T) {
	big := make([]byte, 8)
	for i := range big {
		big[i] = 0xff
	}
	rec := func(k string, v []byte) [2][]byte { return [2][]byte{[]byte(k), v} }
	for name, snap := range map[string][]byte{
		"bad audit head":   craftedSnapshot(rec("\x00audit/head", []byte("not json at all"))),
		"huge applied":     craftedSnapshot(rec("\x00applied", big)),
		"bad checkpoint":   craftedSnapshot(rec("\x00audit/cp/00000000000000000001", []byte("{}"))),
		"bad event":        craftedSnapshot(rec("\x00audit/e/00000000000000000001", []byte("{"))),
		"unknown internal": craftedSnapshot(rec("\x00other", []byte("12345678"))),
		"short record":     craftedSnapshot(rec("k", []byte("1"))),
	} {
		if _, err := ValidateSnapshot(bytes.NewReader(snap)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ValidateSnapshot(bytes.NewReader(craftedSnapshot(rec("k", []byte("12345678v"))))); err != nil {
		t.Fatalf("a plain valid snapshot: %v", err)
	}
}

// A write prepared before a purge request and refused after it stays in
// the Raft log with what it carried: Apply moves RecordPurge to its index
// (keeping the value) so the nodes purge again. Refused writes that were
// prepared after the purge, or carry no value, leave it alone.
func TestStaleWriteAfterPurgeRequestsAnotherPurge(t *testing.T) {
	for _, batched := range []bool{false, true} {
		f, _ := newFSM(t)
		apply := func(logs ...*raft.Log) []interface{} {
			if batched {
				return f.ApplyBatch(logs)
			}
			var out []interface{}
			for _, l := range logs {
				out = append(out, f.Apply(l))
			}
			return out
		}
		apply(
			entry(t, 1, &Command{Ops: []Op{put("transit/key/a", "material v1"), put("transit/key/b", "other")}}),
			entry(t, 2, &Command{Ops: []Op{put("transit/key/d", "to be deleted")}}),
		)
		// The destruction of a: its record and the purge request at 3.
		// Then, in the same batch when batched: a rotation of a read at 1
		// (refused: it carries material of the destroyed key), so the
		// purge record moves to 4.
		out := apply(
			entry(t, 3, &Command{Conds: []Cond{{Key: "transit/key/a", Revision: 1}}, Ops: []Op{put("transit/key/a", "destroyed"), put(RecordPurge, "transit/key/a")}}),
			entry(t, 4, &Command{Conds: []Cond{{Key: "transit/key/a", Revision: 1}}, Ops: []Op{put("transit/key/a", "material v1 v2")}}),
		)
		if !errors.Is(out[1].(*Result).Err, ErrConflict) {
			t.Fatalf("stale rotation: %v", out[1].(*Result).Err)
		}
		if v, rev := mustGet(t, f, RecordPurge); rev != 4 || v != "transit/key/a" {
			t.Fatalf("batched=%v: purge record after a stale write = %q@%d, want the same value @4", batched, v, rev)
		}
		if v, _ := mustGet(t, f, "transit/key/a"); v != "destroyed" {
			t.Fatalf("the stale write changed the key: %q", v)
		}
		// Refused writes that leave the purge record alone: one read after
		// the purge request (b changed at 6, after it), one carrying no
		// value (a stale delete).
		apply(entry(t, 5, &Command{Ops: []Op{put("transit/key/b", "other 2")}}),
			entry(t, 6, &Command{Ops: []Op{put("transit/key/b", "other 3")}}))
		out = apply(
			entry(t, 7, &Command{Conds: []Cond{{Key: "transit/key/b", Revision: 5}}, Ops: []Op{put("transit/key/b", "x")}}),
			entry(t, 8, &Command{Conds: []Cond{{Key: "transit/key/a", Revision: 1}}, Ops: []Op{{Kind: OpDelete, Key: "transit/key/a"}}}),
		)
		for i, r := range out {
			if !errors.Is(r.(*Result).Err, ErrConflict) {
				t.Fatalf("entry %d: %v", 7+i, r.(*Result).Err)
			}
		}
		if _, rev := mustGet(t, f, RecordPurge); rev != 4 {
			t.Fatalf("batched=%v: purge record moved to %d after writes prepared since the purge", batched, rev)
		}
		// A key deleted with a purge request, and a write read before it.
		apply(entry(t, 9, &Command{Conds: []Cond{{Key: "transit/key/d", Revision: 2}}, Ops: []Op{{Kind: OpDelete, Key: "transit/key/d"}, put(RecordPurge, "transit/key/d")}}))
		out = apply(entry(t, 10, &Command{Conds: []Cond{{Key: "transit/key/d", Revision: 2}}, Ops: []Op{put("transit/key/d", "restored")}}))
		if !errors.Is(out[0].(*Result).Err, ErrConflict) {
			t.Fatalf("stale restore: %v", out[0].(*Result).Err)
		}
		if v, rev := mustGet(t, f, RecordPurge); rev != 10 || v != "transit/key/d" {
			t.Fatalf("batched=%v: purge record after a stale write to a deleted key = %q@%d", batched, v, rev)
		}
	}
}
