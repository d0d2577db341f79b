package transit

import (
	"errors"
	"testing"
	"time"
)

// FuzzBackupKeyName: reading the name out of a restore's backup never
// panics, and a backup it cannot read is ErrInvalidBackup.
func FuzzBackupKeyName(f *testing.F) {
	f.Add([]byte(`{"keyraft_transit_backup":1,"policy":{"name":"app"}}`))
	f.Add([]byte(`{"keyraft_transit_backup":1,"policy":{"name":"ns.prod.pay"}}`))
	f.Add([]byte(`{"policy":{"name":"x"},"archived_keys":{}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := BackupKeyName(b, time.Unix(0, 0)); err != nil && !errors.Is(err, ErrInvalidBackup) {
			t.Fatalf("error not ErrInvalidBackup: %v", err)
		}
	})
}
