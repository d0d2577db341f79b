package fsm

import (
	"errors"
	"testing"
)

// A write prepared before a purge is refused after the record changed
// again following the purge (say, a config change of the destroyed key):
// it still carries the pre-purge material into the log, so it must move
// the purge record too.
func TestStaleWriteAfterAPostPurgeChangeStillRequestsAPurge(t *testing.T) {
	f, _ := newFSM(t)
	f.Apply(entry(t, 1, &Command{Ops: []Op{put("transit/key/k", "material v1")}}))
	f.Apply(entry(t, 2, &Command{Ops: []Op{put("transit/key/k", "destroyed"), put(RecordPurge, "transit/key/k")}}))
	f.Apply(entry(t, 3, &Command{Conds: []Cond{{Key: "transit/key/k", Revision: 2}}, Ops: []Op{put("transit/key/k", "destroyed, config changed")}}))
	r := f.Apply(entry(t, 4, &Command{Conds: []Cond{{Key: "transit/key/k", Revision: 1}}, Ops: []Op{put("transit/key/k", "material v1 rotated")}})).(*Result)
	if !errors.Is(r.Err, ErrConflict) {
		t.Fatalf("stale write: %v", r.Err)
	}
	if v, rev := mustGet(t, f, RecordPurge); rev != 4 || v != "transit/key/k" {
		t.Fatalf("purge record = %q@%d after a refused stale write at 4, want the same value @4", v, rev)
	}
}
