package transit

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// Each mistake is found, named by its key, with a fix; a key in good
// shape has no finding; the most severe come first.
func TestHygieneFindsEachMistake(t *testing.T) {
	ctx := context.Background()
	e, _, c := newLifecycleEngine(t)
	e.CreateKey(ctx, "old", fields(t, `{}`))
	e.CreateKey(ctx, "late", fields(t, `{"auto_rotate_period":"720h"}`))
	e.CreateKey(ctx, "open", fields(t, `{"auto_rotate_period":"8760h"}`))
	e.ConfigKey(ctx, "open", fields(t, `{"deletion_allowed":true}`))
	e.CreateKey(ctx, "hot", fields(t, `{"auto_rotate_period":"8760h"}`))
	e.CreateKey(ctx, "bad", fields(t, `{"auto_rotate_period":"8760h"}`))
	e.CompromiseKey(ctx, "bad", fields(t, `{}`))
	c.advance(400 * 24 * time.Hour)
	for _, k := range []string{"open", "hot", "bad"} { // rotated: not overdue
		e.RotateKey(ctx, k)
	}
	e.CreateKey(ctx, "fine", fields(t, `{"auto_rotate_period":"2160h"}`))
	e.usage.add("hot", 2, SafeEncryptions/10*9/2)
	e.usage.add("hot", 1, SafeEncryptions)

	got, err := e.Hygiene(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, f := range got {
		keys = append(keys, f.Severity+" "+f.Check+" "+f.Object)
		if f.Fix == "" || !strings.Contains(f.Message, strings.TrimPrefix(f.Object, "key:")) {
			t.Errorf("finding without a fix or without its key's name: %+v", f)
		}
	}
	want := []string{
		"critical key-compromised key:bad",
		"critical version-encryption-limit key:hot",
		"warning key-rotation-overdue key:late",
		"warning key-never-rotated key:old",
		"warning key-deletion-allowed key:open",
		"warning version-near-encryption-limit key:hot",
	}
	w := append([]string(nil), want...)
	g := append([]string(nil), keys...)
	slices.Sort(w)
	slices.Sort(g)
	if !slices.Equal(g, w) {
		t.Fatalf("findings\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
	for i := 1; i < len(got); i++ {
		if SeverityRank(got[i-1].Severity) < SeverityRank(got[i].Severity) {
			t.Fatalf("not sorted by severity: %v", keys)
		}
	}
}
