package cluster

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
)

// FuzzGrantRecord: the grant record decoder never panics, and accepts
// only grants that keep the rules (a known operation, a TTL in range, an
// active grant approved by someone else).
func FuzzGrantRecord(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	good, _ := json.Marshal(access.Grant{ID: "a1", Key: "app", Operation: "decrypt", TTL: time.Hour, Reason: "r",
		State: access.GrantActive, Requester: "x", Approver: "y", RequestedAt: now, ExpiresAt: now.Add(time.Hour)})
	f.Add(good)
	f.Add([]byte(`{"id":"a","key":"k","operation":"sign","ttl":60000000000,"reason":"r","state":"pending","requester":"x"}`))
	f.Add([]byte(`{"id":"a","state":"active","requester":"x","approver":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := access.DecodeGrant(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error not ErrInvalidRequest: %v", err)
			}
			return
		}
		if g.TTL < access.MinGrantTTL || g.TTL > access.MaxGrantTTL || (g.State == access.GrantActive && g.Approver == g.Requester) {
			t.Fatalf("accepted %+v", g)
		}
	})
}
