package transit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// FuzzRestoreBackup: any backup string is either restored or refused with
// a 400, never a panic or a server error.
func FuzzRestoreBackup(f *testing.F) {
	ctx := context.Background()
	seed := New(newMemStore(), nil)
	in, _ := ParseFields([]byte(`{"exportable":true,"allow_plaintext_backup":true}`))
	seed.CreateKey(ctx, "k", in)
	r, _ := seed.Backup("k")
	raw, _ := base64.StdEncoding.DecodeString(r.Data["backup"].(string))
	f.Add(raw)
	f.Add([]byte(`{"keyraft_transit_backup":1,"policy":{"name":"x","type":"hmac","latest_version":1,"versions":{"1":{"version":1,"secret":"AAAA"}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := New(newMemStore(), nil)
		body, _ := json.Marshal(map[string]string{"backup": base64.StdEncoding.EncodeToString(b)})
		in, err := ParseFields(body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Restore(ctx, "", in); err != nil && !IsUserError(err) {
			t.Fatalf("restore error is not a 4xx: %v", err)
		}
	})
}
