package transit

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/keyraft/keyraft/fsm"
)

// FuzzLifecycle feeds arbitrary bodies to the lifecycle actions and to
// create and config (activation_time, auto_rotate_share), and arbitrary
// lifecycle JSON to the restore check: no panic, every refusal a 4xx,
// and a key that is still readable afterwards.
func FuzzLifecycle(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"pending_window":"168h"}`, `{"pending_window":"1h"}`, `{"pending_window":-5}`,
		`{"pending_window":"99999999999999999999h"}`, `{"reason":"x"}`, `{"activation_time":"2030-01-01T00:00:00Z"}`,
		`{"activation_time":"yesterday"}`, `{"auto_rotate_share":0.5}`, `{"auto_rotate_share":"NaN"}`, `{"auto_rotate_share":[1]}`,
	} {
		for _, action := range LifecycleActions {
			f.Add(action, seed)
		}
		f.Add("config", seed)
		f.Add("create", seed)
	}
	f.Fuzz(func(t *testing.T, action, body string) {
		in, err := ParseFields([]byte(body))
		if err != nil {
			return
		}
		ctx := context.Background()
		e, _, _ := newLifecycleEngine(&testing.T{})
		if _, err := e.CreateKey(ctx, "k", fields(t, `{"deletion_allowed":true}`)); err != nil {
			t.Fatal(err)
		}
		e.ConfigKey(ctx, "k", fields(t, `{"deletion_allowed":true}`))
		switch action {
		case "config":
			_, err = e.ConfigKey(ctx, "k", in)
		case "create":
			_, err = e.CreateKey(ctx, "new", in)
		default:
			_, err = e.ChangeState(ctx, "k", action, in)
		}
		if err != nil && !IsUserError(err) {
			t.Fatalf("%s %s: not a 4xx: %v", action, body, err)
		}
		if _, err := e.ReadKey("k"); err != nil {
			t.Fatalf("key unreadable after %s %s: %v", action, body, err)
		}
		var lc Lifecycle
		if json.Unmarshal([]byte(body), &lc) == nil {
			lc.validate() // must not panic
		}
	})
}

// FuzzUsageRecord stores arbitrary bytes as a key's usage record: reads,
// flushes and the leader's pass must not panic, and a record that does
// not decode is an error, not a zero count silently replacing it.
func FuzzUsageRecord(f *testing.F) {
	f.Add([]byte(`{"encryptions":{"1":5}}`))
	f.Add([]byte(`{"encryptions":{"1":18446744073709551615}}`))
	f.Add([]byte(`{"encryptions":{"-1":1,"x":2}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		ctx := context.Background()
		e, st, _ := newLifecycleEngine(&testing.T{})
		if _, err := e.CreateKey(ctx, "k", fields(t, `{}`)); err != nil {
			t.Fatal(err)
		}
		st.Put(fsm.RecordTransitUsage+"k", rec)
		_, _, decErr := e.readUsage("k")
		e.ReadKey("k")
		e.LifecycleDue(ctx)
		e.usage.add("k", 1, 1)
		flushErr := e.FlushUsage(ctx)
		if decErr != nil && flushErr == nil {
			t.Fatalf("a usage record that does not decode was overwritten: %v", decErr)
		}
		e.Hygiene(ctx)
	})
}
