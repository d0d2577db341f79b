package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/plugins/bolt"
)

func event(t testing.TB, op string) []byte {
	t.Helper()
	b, err := json.Marshal(&audit.Event{Time: time.Unix(1700000000, 0).UTC(), Node: "n1", Operation: op, Outcome: audit.Allowed, Status: 200})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func verifyAll(t *testing.T, f *FSM) uint64 {
	t.Helper()
	v := audit.NewVerifier(0, audit.GenesisHash)
	err := f.AuditEvents(1, func(seq uint64, b []byte) error {
		e, err := audit.Decode(b)
		if err != nil {
			return err
		}
		if e.Seq != seq {
			t.Fatalf("event stored under seq %d says %d", seq, e.Seq)
		}
		return v.Next(e)
	})
	if err != nil {
		t.Fatal(err)
	}
	last, hash := v.Last()
	if h := f.AuditHead(); h.Seq != last || h.Hash != hash {
		t.Fatalf("head %+v, chain ends at %d %s", h, last, hash)
	}
	return last
}

func TestAuditEventsChainAtomicallyWithWrites(t *testing.T) {
	f, path := newFSM(t)
	out := f.ApplyBatch([]*raft.Log{
		entry(t, 1, &Command{Events: [][]byte{event(t, "a"), event(t, "b")}}),
		entry(t, 2, &Command{Conds: []Cond{{Key: "k"}}, Ops: []Op{put("k", "1")}, Events: [][]byte{event(t, "create")}}),
		// Loses its precondition: neither its write nor its event may land.
		entry(t, 3, &Command{Conds: []Cond{{Key: "k"}}, Ops: []Op{put("k", "2")}, Events: [][]byte{event(t, "lost")}}),
	})
	r := out[0].(*Result)
	if r.FirstSeq != 1 || r.LastSeq != 2 {
		t.Fatalf("first entry seqs %d-%d", r.FirstSeq, r.LastSeq)
	}
	if r := out[2].(*Result); !errors.Is(r.Err, ErrConflict) || r.LastSeq != 0 {
		t.Fatalf("conflicting entry: %+v", r)
	}
	f.Apply(entry(t, 4, &Command{Events: [][]byte{event(t, "c")}}))
	if n := verifyAll(t, f); n != 4 {
		t.Fatalf("chain has %d events, want 4", n)
	}
	var ops []string
	f.AuditEvents(1, func(_ uint64, b []byte) error {
		e, _ := audit.Decode(b)
		ops = append(ops, e.Operation)
		return nil
	})
	if want := []string{"a", "b", "create", "c"}; len(ops) != 4 || ops[2] != want[2] || ops[3] != want[3] {
		t.Fatalf("events %v, want %v", ops, want)
	}

	// The head survives a restart and the chain continues from it.
	head := f.AuditHead()
	f.store.Close()
	st, _ := bolt.Open(path)
	defer st.Close()
	f2, _ := New(st)
	if f2.AuditHead() != head {
		t.Fatalf("head after reopen %+v, want %+v", f2.AuditHead(), head)
	}
	f2.Apply(entry(t, 5, &Command{Events: [][]byte{event(t, "d")}}))
	if n := verifyAll(t, f2); n != 5 {
		t.Fatalf("chain has %d events after restart", n)
	}

	// Snapshot and restore carry the chain and its head.
	snap, _ := f2.Snapshot()
	var sink memSink
	snap.Persist(&sink)
	snap.Release()
	dst, _ := newFSM(t)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if dst.AuditHead() != f2.AuditHead() {
		t.Fatal("restore lost the audit head")
	}
	verifyAll(t, dst)
}

func TestAuditEventsFromProposerAreChecked(t *testing.T) {
	preset, _ := json.Marshal(&audit.Event{Seq: 7, Operation: "x", Outcome: audit.Allowed})
	forged, _ := json.Marshal(&audit.Event{Operation: "x", Outcome: audit.Allowed, Hash: "00"})
	for name, ev := range map[string][]byte{
		"seq set":       preset,
		"hash set":      forged,
		"not json":      []byte("{"),
		"unknown field": []byte(`{"operation":"x","outcome":"allowed","extra":1}`),
	} {
		b, err := (&Command{Events: [][]byte{ev}}).Encode()
		if err != nil {
			t.Fatalf("%s: encode: %v", name, err)
		}
		if _, err := DecodeCommand(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
		f, _ := newFSM(t)
		if res := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: b}).(*Result); !errors.Is(res.Err, ErrMalformed) || f.AuditHead().Seq != 0 {
			t.Errorf("%s: applied: %v, head %d", name, res.Err, f.AuditHead().Seq)
		}
	}
	if _, err := (&Command{Ops: []Op{put("\x00audit/head", "x")}}).Encode(); !errors.Is(err, ErrMalformed) {
		t.Error("a command could overwrite the audit head")
	}
}

func BenchmarkApplyBatchOfEvents(b *testing.B) {
	f, _ := newFSM(b)
	evs := make([][]byte, 256)
	for i := range evs {
		evs[i] = event(b, "transit/encrypt")
	}
	idx := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		idx++
		f.Apply(entry(b, idx, &Command{Events: evs}))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}
