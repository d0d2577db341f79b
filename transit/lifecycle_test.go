package transit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// The expected table, written out by hand (not derived from allowedIn):
// one row per operation, columns in States order.
var wantTable = map[Op]string{
	OpRead:          "yes yes yes yes yes yes",
	OpEncrypt:       "no  yes no  no  no  no",
	OpDecrypt:       "no  yes no  yes no  no",
	OpRewrap:        "no  yes no  no  no  no",
	OpSign:          "no  yes no  no  no  no",
	OpVerify:        "no  yes no  yes no  no",
	OpHMAC:          "no  yes no  no  no  no",
	OpRotate:        "yes yes no  no  no  no",
	OpConfig:        "yes yes yes yes no  no",
	OpTrim:          "yes yes yes yes no  no",
	OpExport:        "yes yes yes no  no  no",
	OpDelete:        "yes yes yes yes no  yes",
	OpDisable:       "yes yes yes no  no  no",
	OpEnable:        "yes yes yes no  no  no",
	OpCompromise:    "yes yes yes yes yes yes",
	OpDestroy:       "yes yes yes yes no  no",
	OpCancelDestroy: "no  no  no  no  yes no",
}

func TestDecideTable(t *testing.T) {
	if len(wantTable) != len(Ops) {
		t.Fatalf("expected table has %d rows, Ops has %d", len(wantTable), len(Ops))
	}
	for _, op := range Ops {
		cells := strings.Fields(wantTable[op])
		for i, s := range States {
			t.Run(string(op)+"/"+string(s), func(t *testing.T) {
				if got, want := Decide(s, op), cells[i] == "yes"; got != want {
					t.Errorf("Decide(%s, %s) = %v, want %v", s, op, got, want)
				}
			})
		}
	}
	if Decide("", OpRead) || Decide("bogus", OpRead) || Decide(StateActive, "bogus") {
		t.Error("an unknown state or operation was allowed")
	}
}

// The table in docs/lifecycle.md is the one Decide implements.
func TestDocsTableMatchesDecide(t *testing.T) {
	f, err := os.Open("../docs/lifecycle.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var header []string
	rows := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[0] == "operation" {
			header = cells[1:]
			continue
		}
		if header == nil || strings.HasPrefix(cells[0], "---") {
			continue
		}
		op := Op(cells[0])
		if !slices.Contains(Ops, op) {
			header = nil // the table ended
			continue
		}
		rows++
		for i, st := range header {
			if got := Decide(State(st), op); got != (cells[i+1] == "yes") {
				t.Errorf("docs say %s in %s is %q; Decide says %v", op, st, cells[i+1], got)
			}
		}
	}
	if rows != len(Ops) {
		t.Fatalf("docs table has %d operation rows, want %d", rows, len(Ops))
	}
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

func newLifecycleEngine(t *testing.T) (*Engine, *memStore, *clock) {
	st := newMemStore()
	e := New(st, nil)
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	e.Now = c.Now
	return e, st, c
}

func wantStatus(t *testing.T, err error, status int, contains string) {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) || te.Status != status || !strings.Contains(te.Msg, contains) {
		t.Fatalf("got %v, want %d containing %q", err, status, contains)
	}
}

func readState(t *testing.T, e *Engine, name string) (string, []string) {
	t.Helper()
	r, err := e.ReadKey(name)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, h := range r.Data["history"].([]map[string]any) {
		events = append(events, h["event"].(string))
	}
	return r.Data["state"].(string), events
}

// A key's whole life through the engine: every transition, what each
// state refuses, the compromised flag, the history, and destruction by
// the leader's scheduled work.
func TestKeyLifeCycle(t *testing.T) {
	ctx := context.Background()
	e, st, c := newLifecycleEngine(t)
	if _, err := e.CreateKey(ctx, "k", fields(t, `{"exportable":true}`)); err != nil {
		t.Fatal(err)
	}
	enc := func() (string, error) {
		r, err := e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`))
		if err != nil {
			return "", err
		}
		return r.Data["ciphertext"].(string), nil
	}
	dec := func(ct string) (*Response, error) {
		return e.Decrypt(ctx, "k", fields(t, `{"ciphertext":"`+ct+`"}`))
	}
	ct, err := enc()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.RotateKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DisableKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	_, err = enc()
	wantStatus(t, err, http.StatusBadRequest, `key "k" is disabled: encrypt is not allowed (enable it with: keyraft keys enable k)`)
	_, err = dec(ct)
	wantStatus(t, err, http.StatusBadRequest, "disabled: decrypt")
	_, err = e.RotateKey(ctx, "k")
	wantStatus(t, err, http.StatusBadRequest, "disabled: rotate")
	if _, err := e.EnableKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := dec(ct); err != nil {
		t.Fatal(err)
	}

	// Compromised: decrypt flagged (response and audit event), encrypt refused.
	if _, err := e.CompromiseKey(ctx, "k", fields(t, `{"reason":"laptop stolen"}`)); err != nil {
		t.Fatal(err)
	}
	ev := &audit.Event{}
	r, err := e.Decrypt(audit.WithEvent(ctx, ev), "k", fields(t, `{"ciphertext":"`+ct+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Data["key_compromised"] != true || len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "compromised") {
		t.Fatalf("decrypt with a compromised key not flagged: %v %v", r.Data, r.Warnings)
	}
	if ev.Details["key_compromised"] != "true" {
		t.Fatalf("audit event not flagged: %v", ev.Details)
	}
	if r, _ := e.ReadKey("k"); r.Data["key_compromised"] != true || r.Data["compromised"] != true {
		t.Fatalf("read of a compromised key not flagged: %v", r.Data)
	}
	_, err = enc()
	wantStatus(t, err, http.StatusBadRequest, "compromised: encrypt")
	_, err = e.EnableKey(ctx, "k")
	wantStatus(t, err, http.StatusBadRequest, "compromised: enable")
	_, err = e.Export("encryption-key", "k", "")
	wantStatus(t, err, http.StatusBadRequest, "compromised: export")

	// Destruction needs deletion_allowed and a window in range.
	_, err = e.DestroyKey(ctx, "k", fields(t, `{}`))
	wantStatus(t, err, http.StatusBadRequest, "deletion_allowed")
	if _, err := e.ConfigKey(ctx, "k", fields(t, `{"deletion_allowed":true}`)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"59m", "721h", "-1h", "soon"} {
		_, err = e.DestroyKey(ctx, "k", fields(t, `{"pending_window":"`+w+`"}`))
		wantStatus(t, err, http.StatusBadRequest, "pending_window")
	}
	r, err = e.DestroyKey(ctx, "k", fields(t, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Data["destroy_time"], c.now.Add(7*24*time.Hour).Format(time.RFC3339Nano); got != want {
		t.Fatalf("destroy_time %v, want %v (default window 7 days)", got, want)
	}
	_, err = dec(ct)
	wantStatus(t, err, http.StatusBadRequest, "pending-destruction: decrypt is not allowed (cancel the destruction with: keyraft keys cancel-destroy k)")
	_, err = e.DeleteKey(ctx, "k")
	wantStatus(t, err, http.StatusBadRequest, "pending-destruction: delete")
	_, err = e.DestroyKey(ctx, "k", fields(t, `{}`))
	wantStatus(t, err, http.StatusBadRequest, "pending-destruction: destroy")

	// Cancel: back to compromised (it was), then destroy for real.
	if _, err := e.CancelDestroyKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if s, _ := readState(t, e, "k"); s != "compromised" {
		t.Fatalf("after cancel: %s", s)
	}
	if _, err := e.DestroyKey(ctx, "k", fields(t, `{"pending_window":"1h"}`)); err != nil {
		t.Fatal(err)
	}
	c.advance(59 * time.Minute)
	if n, err := e.LifecycleDue(ctx); err != nil || n != 0 {
		t.Fatalf("before destroy_time: %d %v", n, err)
	}
	c.advance(time.Minute)
	rev0, _ := st.Revision(store.PurgeKey)
	if n, err := e.LifecycleDue(ctx); err != nil || n != 1 {
		t.Fatalf("at destroy_time: %d %v", n, err)
	}
	if rev, _ := st.Revision(store.PurgeKey); rev <= rev0 {
		t.Fatal("destruction committed without a purge request")
	}
	raw, _, _ := st.Read(fsm.RecordTransitKey + "k")
	var rec Policy
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	for n, v := range rec.Versions {
		if len(v.Secret) != 0 || len(v.HMACKey) != 0 {
			t.Fatalf("version %d still has material in the record", n)
		}
	}
	for _, use := range []func() error{
		func() error { _, err := enc(); return err },
		func() error { _, err := dec(ct); return err },
		func() error { _, err := e.RotateKey(ctx, "k"); return err },
		func() error { _, err := e.Export("encryption-key", "k", ""); return err },
		func() error { _, err := e.Backup("k"); return err },
		func() error { _, err := e.EnableKey(ctx, "k"); return err },
	} {
		wantStatus(t, use(), http.StatusBadRequest, `key "k" is destroyed`)
	}
	s, events := readState(t, e, "k")
	want := []string{"create", "rotate", "disable", "enable", "compromise", "schedule-destroy", "cancel-destroy", "schedule-destroy", "destroy"}
	if s != "destroyed" || !slices.Equal(events, want) {
		t.Fatalf("state %s history %v, want destroyed %v", s, events, want)
	}
	// The metadata goes with a delete.
	if _, err := e.DeleteKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
}

func TestPreActive(t *testing.T) {
	ctx := context.Background()
	e, _, c := newLifecycleEngine(t)
	_, err := e.CreateKey(ctx, "k", fields(t, `{"activation_time":"not a time"}`))
	wantStatus(t, err, http.StatusBadRequest, "activation_time")
	at := c.now.Add(time.Hour).Format(time.RFC3339)
	if _, err := e.CreateKey(ctx, "k", fields(t, `{"activation_time":"`+at+`"}`)); err != nil {
		t.Fatal(err)
	}
	if s, _ := readState(t, e, "k"); s != "pre-active" {
		t.Fatalf("state %s", s)
	}
	_, err = e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`))
	wantStatus(t, err, http.StatusBadRequest, "pre-active: encrypt")
	c.advance(time.Hour)
	if _, err := e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`)); err != nil {
		t.Fatalf("encrypt once the activation time came: %v", err)
	}
	if n, err := e.LifecycleDue(ctx); err != nil || n != 1 {
		t.Fatalf("LifecycleDue: %d %v", n, err)
	}
	if _, events := readState(t, e, "k"); !slices.Equal(events, []string{"create", "activate"}) {
		t.Fatalf("history %v", events)
	}
	_, err = e.ConfigKey(ctx, "k", fields(t, `{"activation_time":"`+at+`"}`))
	wantStatus(t, err, http.StatusBadRequest, "only change while the key is pre-active")

	// enable activates a pre-active key at once.
	if _, err := e.CreateKey(ctx, "later", fields(t, `{"activation_time":"2099-01-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.EnableKey(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	if s, _ := readState(t, e, "later"); s != "active" {
		t.Fatalf("after enable: %s", s)
	}
}

// Records from before lifecycles are active keys with no history.
func TestOldRecordIsActive(t *testing.T) {
	ctx := context.Background()
	e, st, _ := newLifecycleEngine(t)
	e.CreateKey(ctx, "k", fields(t, `{}`))
	raw, _, _ := st.Read(fsm.RecordTransitKey + "k")
	var m map[string]any
	json.Unmarshal(raw, &m)
	delete(m, "lifecycle")
	b, _ := json.Marshal(m)
	st.Put(fsm.RecordTransitKey+"k", b)
	e.Purge()
	if s, events := readState(t, e, "k"); s != "active" || len(events) != 0 {
		t.Fatalf("old record: %s %v", s, events)
	}
	if _, err := e.DisableKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if s, _ := readState(t, e, "k"); s != "disabled" {
		t.Fatal(s)
	}
}

// Encryptions are counted per version and, once committed, a version
// past its share of 2^32 is rotated by the leader's scheduled work.
func TestUsageRotation(t *testing.T) {
	ctx := context.Background()
	e, _, _ := newLifecycleEngine(t)
	e.CreateKey(ctx, "k", fields(t, `{"auto_rotate_share":0.25}`))
	for range 3 {
		if _, err := e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`)); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := e.ReadKey("k")
	if got := r.Data["encryptions"].(map[string]uint64)["1"]; got != 3 {
		t.Fatalf("encryptions before flush: %d", got)
	}
	if err := e.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.LifecycleDue(ctx); n != 0 {
		t.Fatal("rotated below the threshold")
	}
	e.usage.add("k", 1, SafeEncryptions/4-3) // as if the cluster made 2^30 encryptions
	if err := e.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ = e.ReadKey("k")
	if got := r.Data["encryptions"].(map[string]uint64)["1"]; got != SafeEncryptions/4 {
		t.Fatalf("committed count %d", got)
	}
	if n, err := e.LifecycleDue(ctx); err != nil || n != 1 {
		t.Fatalf("LifecycleDue at the threshold: %d %v", n, err)
	}
	r, _ = e.ReadKey("k")
	if r.Data["latest_version"] != 2 {
		t.Fatalf("not rotated: %v", r.Data["latest_version"])
	}
	if n, _ := e.LifecycleDue(ctx); n != 0 {
		t.Fatal("rotated again though the new version is unused")
	}
	_, err := e.ConfigKey(ctx, "k", fields(t, `{"auto_rotate_share":1.5}`))
	wantStatus(t, err, http.StatusBadRequest, "auto_rotate_share")
}

// Auto-rotation by period leaves keys that are not active alone.
func TestRotateDueOnlyActive(t *testing.T) {
	ctx := context.Background()
	e, _, c := newLifecycleEngine(t)
	e.CreateKey(ctx, "off", fields(t, `{"auto_rotate_period":"1h"}`))
	e.DisableKey(ctx, "off")
	c.advance(2 * time.Hour)
	if n, err := e.RotateDue(ctx); err != nil || n != 0 {
		t.Fatalf("RotateDue rotated a disabled key: %d %v", n, err)
	}
}

func BenchmarkCountEncryption(b *testing.B) {
	e, _, _ := newLifecycleEngine(&testing.T{})
	p := &Policy{Name: "k", Type: "aes256-gcm96"}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.countEncryption(p, 1)
		}
	})
}

// BenchmarkEncryptEngine is the engine's whole encrypt of 32 bytes (state
// check and encryption count included), for comparison with
// BenchmarkCountEncryption.
func BenchmarkEncryptEngine(b *testing.B) {
	ctx := context.Background()
	e, _, _ := newLifecycleEngine(&testing.T{})
	e.CreateKey(ctx, "k", mustFields(&testing.T{}, `{}`))
	in := `{"plaintext":"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="}`
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f, _ := ParseFields([]byte(in))
			if _, err := e.Encrypt(ctx, "k", f); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// One flush of many busy keys is a few commits, not one per key; the
// counts of a deleted key are dropped.
func TestFlushUsageBatches(t *testing.T) {
	ctx := context.Background()
	e, st, _ := newLifecycleEngine(t)
	for i := range 300 {
		name := "k" + strconv.Itoa(i)
		e.CreateKey(ctx, name, fields(t, `{}`))
		e.usage.add(name, 1, uint64(i+1))
	}
	e.usage.add("gone", 1, 5)
	before := st.Index()
	if err := e.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	if commits := st.Index() - before; commits != 2 {
		t.Fatalf("%d commits for 300 keys, want 2", commits)
	}
	u, _, _ := e.readUsage("k299")
	if u.Encryptions[1] != 300 {
		t.Fatalf("k299 count %d", u.Encryptions[1])
	}
	if rev, _ := st.Revision(fsm.RecordTransitUsage + "gone"); rev != 0 {
		t.Fatal("counts of a key that does not exist were committed")
	}
	if e.usage.pending("k0", 1) != 0 {
		t.Fatal("committed counts still pending")
	}
}

// A key destroyed through another node leaves this node's cache, and its
// unwrapped material is zeroed, even if no request touches it again.
func TestSweepCacheZeroesDestroyedKey(t *testing.T) {
	ctx := context.Background()
	e, st, c := newLifecycleEngine(t)
	other := New(st, nil)
	other.Now = c.Now
	e.CreateKey(ctx, "k", fields(t, `{"deletion_allowed":true}`))
	e.ConfigKey(ctx, "k", fields(t, `{"deletion_allowed":true}`))
	e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`))
	l := e.cached("k")
	secret := l.policy.Versions[1].Secret
	if n := e.SweepCache(0); n != 0 {
		t.Fatalf("swept %d unchanged keys", n)
	}
	if _, err := other.DestroyKey(ctx, "k", fields(t, `{"pending_window":"1h"}`)); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Hour)
	if n, err := other.LifecycleDue(ctx); err != nil || n != 1 {
		t.Fatalf("LifecycleDue: %d %v", n, err)
	}
	if n := e.SweepCache(0); n != 1 || e.cached("k") != nil {
		t.Fatalf("SweepCache dropped %d; still cached: %v", n, e.cached("k") != nil)
	}
	if !allZero(secret) {
		t.Fatal("the destroyed key's material was not zeroed in memory")
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return len(b) > 0
}

// Every way key material leaves the state asks the nodes to purge their
// disks: destruction (TestKeyLifeCycle), delete, trim, and a restore that
// replaces a key.
func TestMaterialRemovalRequestsPurge(t *testing.T) {
	ctx := context.Background()
	e, st, _ := newLifecycleEngine(t)
	e.CreateKey(ctx, "k", fields(t, `{"exportable":true,"allow_plaintext_backup":true}`))
	e.ConfigKey(ctx, "k", fields(t, `{"deletion_allowed":true}`))
	e.RotateKey(ctx, "k")
	e.ConfigKey(ctx, "k", fields(t, `{"min_decryption_version":2,"min_encryption_version":2}`))
	backup, err := e.Backup("k")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		do   func() error
	}{
		{"trim", func() error {
			_, err := e.TrimKey(ctx, "k", fields(t, `{"min_available_version":2}`))
			return err
		}},
		{"restore over the key", func() error {
			_, err := e.Restore(ctx, "k", fields(t, `{"force":true,"backup":"`+backup.Data["backup"].(string)+`"}`))
			return err
		}},
		{"delete", func() error { _, err := e.DeleteKey(ctx, "k"); return err }},
	} {
		before, _ := st.Revision(store.PurgeKey)
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if after, _ := st.Revision(store.PurgeKey); after <= before {
			t.Errorf("%s committed without a purge request", step.name)
		}
	}
}

// A delete that commits between the flush's check that the key exists
// and its commit does not leave a usage record behind: the counts of a
// deleted key would otherwise come back under its name.
func TestFlushUsageRacingDeleteLeavesNoRecord(t *testing.T) {
	ctx := context.Background()
	e, st, _ := newLifecycleEngine(t)
	if _, err := e.CreateKey(ctx, "k", fields(t, `{"deletion_allowed":true}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ConfigKey(ctx, "k", fields(t, `{"deletion_allowed":true}`)); err != nil {
		t.Fatal(err)
	}
	e.usage.add("k", 1, 7)
	deleted := false
	st.OnRead = func() { // the flush reads the usage record: delete now
		if deleted {
			return
		}
		deleted = true
		st.OnRead = nil
		if _, err := New(st, nil).DeleteKey(ctx, "k"); err != nil {
			t.Error(err)
		}
	}
	e.FlushUsage(ctx)
	if !deleted {
		t.Fatal("the flush did not read the usage record")
	}
	if rev, _ := st.Revision(fsm.RecordTransitKey + "k"); rev != 0 {
		t.Fatal("the key was not deleted")
	}
	if rev, _ := st.Revision(fsm.RecordTransitUsage + "k"); rev != 0 {
		t.Fatal("the usage record of a deleted key was recreated")
	}
}

// Once destroy_time has come the key is destroyed for every use and for
// cancel-destroy, before the leader's pass removes the material: the
// pending window does not depend on when that pass runs.
func TestDueKeyIsDestroyedBeforeTheLeaderPass(t *testing.T) {
	ctx := context.Background()
	e, _, c := newLifecycleEngine(t)
	if _, err := e.CreateKey(ctx, "k", fields(t, `{"deletion_allowed":true}`)); err != nil {
		t.Fatal(err)
	}
	e.ConfigKey(ctx, "k", fields(t, `{"deletion_allowed":true}`))
	resp, err := e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`))
	if err != nil {
		t.Fatal(err)
	}
	ct := resp.Data["ciphertext"].(string)
	if _, err := e.DestroyKey(ctx, "k", fields(t, `{"pending_window":"1h"}`)); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Hour) // due; no LifecycleDue has run
	_, err = e.CancelDestroyKey(ctx, "k")
	wantStatus(t, err, http.StatusBadRequest, "due for destruction")
	_, err = e.Decrypt(ctx, "k", fields(t, `{"ciphertext":"`+ct+`"}`))
	wantStatus(t, err, http.StatusBadRequest, "is destroyed")
	if r, err := e.ReadKey("k"); err != nil || r.Data["state"] != string(StateDestroyed) {
		t.Fatalf("read of a due key: %v %v", r, err)
	}
	if n, err := e.LifecycleDue(ctx); err != nil || n != 1 {
		t.Fatalf("LifecycleDue: %d %v", n, err)
	}
	l, _ := e.get("k")
	if l.policy.Lifecycle.State != StateDestroyed || len(l.policy.Versions[1].Secret) != 0 {
		t.Fatal("the leader's pass did not destroy the due key")
	}
}

// hookStore runs beforeCommit (once) before the next commit, to land
// another node's change between an engine's read and its commit.
type hookStore struct {
	*memStore
	beforeCommit func()
}

func (s *hookStore) Commit(ctx context.Context, txn *store.Txn) (uint64, error) {
	if f := s.beforeCommit; f != nil {
		s.beforeCommit = nil
		f()
	}
	return s.memStore.Commit(ctx, txn)
}

// A restore with force replaces a key only as a delete would: it needs
// deletion_allowed, and it never undoes the lifecycle (a compromised key
// stays marked, a key pending destruction or destroyed gets no material
// back). The replaced key's purge and the removal of its usage counts
// are decided on the record the commit replaces.
func TestRestoreForceKeepsLifecycleRules(t *testing.T) {
	ctx := context.Background()
	e, st, c := newLifecycleEngine(t)
	if _, err := e.CreateKey(ctx, "src", fields(t, `{"exportable":true,"allow_plaintext_backup":true}`)); err != nil {
		t.Fatal(err)
	}
	resp, err := e.Backup("src")
	if err != nil {
		t.Fatal(err)
	}
	body := fields(t, `{"backup":"`+resp.Data["backup"].(string)+`","force":true}`)
	restore := func(name string) error {
		_, err := e.Restore(ctx, name, body)
		return err
	}
	mk := func(name string, deletable bool) {
		t.Helper()
		if _, err := e.CreateKey(ctx, name, fields(t, `{}`)); err != nil {
			t.Fatal(err)
		}
		if deletable {
			e.ConfigKey(ctx, name, fields(t, `{"deletion_allowed":true}`))
		}
	}
	mk("protected", false)
	wantStatus(t, restore("protected"), http.StatusBadRequest, "does not allow deletion")

	mk("comp", true)
	e.CompromiseKey(ctx, "comp", fields(t, `{"reason":"leaked"}`))
	wantStatus(t, restore("comp"), http.StatusBadRequest, "is compromised")
	if r, _ := e.ReadKey("comp"); r.Data["state"] != string(StateCompromised) {
		t.Fatalf("compromised key after a refused restore: %v", r.Data["state"])
	}

	mk("pending", true)
	e.DestroyKey(ctx, "pending", fields(t, `{"pending_window":"2h"}`))
	wantStatus(t, restore("pending"), http.StatusBadRequest, "pending-destruction")

	mk("gone", true)
	e.DestroyKey(ctx, "gone", fields(t, `{"pending_window":"1h"}`))
	c.advance(time.Hour)
	wantStatus(t, restore("gone"), http.StatusBadRequest, "is destroyed") // due, not yet destroyed by the leader
	if _, err := e.LifecycleDue(ctx); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, restore("gone"), http.StatusBadRequest, "is destroyed")

	// Allowed: the old counts go, and every node purges the old material.
	mk("ok", true)
	e.usage.add("ok", 1, 9)
	if err := e.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	purgeRev, _ := st.Revision(store.PurgeKey)
	if err := restore("ok"); err != nil {
		t.Fatal(err)
	}
	if rev, _ := st.Revision(fsm.RecordTransitUsage + "ok"); rev != 0 {
		t.Fatal("the replaced key's usage counts carried over")
	}
	if rev, _ := st.Revision(store.PurgeKey); rev == purgeRev {
		t.Fatal("replacing a key requested no purge")
	}

	// The key appears between the restore's first read and its commit:
	// the retry replaces it, so it must purge it too.
	hs := &hookStore{memStore: newMemStore()}
	e2 := New(hs, nil)
	hs.beforeCommit = func() {
		other := New(hs.memStore, nil)
		other.CreateKey(ctx, "late", fields(t, `{}`))
		other.ConfigKey(ctx, "late", fields(t, `{"deletion_allowed":true}`))
	}
	if _, err := e2.Restore(ctx, "late", body); err != nil {
		t.Fatal(err)
	}
	if rev, _ := hs.Revision(store.PurgeKey); rev == 0 {
		t.Fatal("a key created concurrently was replaced without a purge")
	}
}

// A pending window below the documented minimum (a test server's unsafe
// setting) is recorded in the key's history and in the audit event.
func TestUnsafePendingWindowIsRecorded(t *testing.T) {
	e, _, _ := newLifecycleEngine(t)
	if _, err := e.CreateKey(context.Background(), "k", fields(t, `{}`)); err != nil {
		t.Fatal(err)
	}
	e.ConfigKey(context.Background(), "k", fields(t, `{"deletion_allowed":true}`))
	_, err := e.DestroyKey(context.Background(), "k", fields(t, `{"pending_window":"2s"}`))
	wantStatus(t, err, http.StatusBadRequest, "pending_window must be between 1h0m0s")
	e.UnsafeMinPendingWindow = time.Second
	ev := &audit.Event{Operation: "transit/keys/k/destroy", Identity: "t"}
	if _, err := e.DestroyKey(audit.WithEvent(context.Background(), ev), "k", fields(t, `{"pending_window":"2s"}`)); err != nil {
		t.Fatal(err)
	}
	if ev.Details["unsafe_pending_window"] != "2s" {
		t.Fatalf("audit details %v", ev.Details)
	}
	l, _ := e.get("k")
	h := l.policy.Lifecycle.History
	if last := h[len(h)-1]; last.Event != EventScheduleDestroy || !strings.Contains(last.Detail, "UNSAFE: pending window 2s below the 1h0m0s minimum") {
		t.Fatalf("history entry %+v", last)
	}
}
