package transit

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/keys"
	"github.com/keyraft/keyraft/store"
)

// Plaintext backup: the one way key material leaves the server whole.
// It is gated twice, as in Vault: the key must be both exportable and
// allow_plaintext_backup, flags that can be turned on but never off.

// backupFile is the decoded form of a backup string.
type backupFile struct {
	Format     int       `json:"keyraft_transit_backup"`
	BackupTime time.Time `json:"backup_time"`
	Policy     *Policy   `json:"policy"`
}

// Backup handles GET transit/backup/:name: the whole key, every version
// included, as one base64 string that Restore takes back.
func (e *Engine) Backup(name string) (*Response, error) {
	return e.BackupAs(name, BackupFormatKeyraft, "")
}

// BackupAs handles GET transit/backup/:name?format=: the backup in
// keyraft's format ("" too), or as HashiCorp Vault's or OpenBao's
// transit backup (vaultexport.go) of the key named nameInBackup there,
// which POST transit/restore on Vault or OpenBao takes.
func (e *Engine) BackupAs(name, format, nameInBackup string) (*Response, error) {
	if err := checkBackupFormat(format); err != nil {
		return nil, err
	}
	l, err := e.mustGet(name, "key")
	if err != nil {
		return nil, err
	}
	p := l.policy
	if err := e.allow(context.Background(), p, OpExport); err != nil {
		return nil, err
	}
	if !p.Exportable || !p.AllowPlaintextBackup {
		return nil, badRequest("plaintext backup is not allowed for this key: it needs both exportable and allow_plaintext_backup")
	}
	var b []byte
	if format == "" || format == BackupFormatKeyraft {
		b, err = json.Marshal(backupFile{Format: 1, BackupTime: e.Now().UTC(), Policy: p})
	} else if b, err = encodeVaultBackup(p, format, nameInBackup, e.Now()); err != nil {
		shown := cmp.Or(nameInBackup, name)
		return nil, badRequest("key %q cannot be backed up for %s: %v", shown, format, err)
	}
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return ok(map[string]any{"backup": base64.StdEncoding.EncodeToString(b)}), nil
}

// Restore handles POST transit/restore(/:name) {backup, force}: the key
// comes back under its own name (or the one in the path). An existing key
// is replaced only with force.
func (e *Engine) Restore(ctx context.Context, name string, in *Fields) (*Response, error) {
	raw, err := in.Base64("backup")
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, badRequest("missing backup")
	}
	defer clear(raw)
	if len(raw) > maxBackupBytes {
		return nil, badRequest("invalid backup: %d bytes, more than the %d a key may hold", len(raw), maxBackupBytes)
	}
	force, err := in.Bool("force", false)
	if err != nil {
		return nil, err
	}
	var bf backupFile
	if err := json.Unmarshal(raw, &bf); err != nil || bf.Format != 1 || bf.Policy == nil {
		if bf.Policy != nil {
			bf.Policy.zero()
		}
		// A backup from HashiCorp Vault (vaultbackup.go)?
		vp, verr := decodeVaultBackup(raw, e.Now())
		if errors.Is(verr, errNotVaultBackup) {
			return nil, badRequest("invalid backup: not a keyraft or Vault transit key backup")
		}
		if verr != nil {
			return nil, badRequest("invalid Vault backup: %v", verr)
		}
		bf.Policy = vp
	}
	defer bf.Policy.zero()
	if len(bf.Policy.Versions) > maxBackupVersions {
		return nil, badRequest("invalid backup: %d versions, more than the %d a restored key may have (trim the key first)", len(bf.Policy.Versions), maxBackupVersions)
	}
	pb, _ := json.Marshal(bf.Policy)
	defer clear(pb)
	p, err := unmarshalPolicy(pb)
	if err != nil {
		return nil, badRequest("invalid backup: %v", err)
	}
	defer p.zero()
	if name == "" {
		name = p.Name
	}
	p.Name = name
	if err := p.validate(); err != nil {
		return nil, badRequest("invalid backup: %v", err)
	}
	for n, v := range p.Versions { // the material must be usable before it is stored
		h, err := keys.NewHandle(p.spec(), v)
		if err != nil {
			return nil, badRequest("invalid backup: version %d: %v", n, err)
		}
		h.Zero()
	}
	var replaced *Policy
	_, err = e.updateTxn(ctx, name, func(cur *Policy) (*Policy, []store.Write, error) {
		replaced = cur
		// A new key starts with no encryption counts (a record left by
		// a key of that name is not its own).
		clearUsage := store.Write{Key: fsm.RecordTransitUsage + name, Delete: true}
		if cur == nil {
			return p.clone(), []store.Write{clearUsage}, nil
		}
		if err := e.checkReplace(ctx, cur, force); err != nil {
			return nil, nil, err
		}
		// Replacing a key destroys its material: every node purges its
		// disk; and the old key's encryption counts go with it.
		w := []store.Write{clearUsage, store.PurgeWrite(fsm.RecordTransitKey + name)}
		return p.clone(), append(w, destroyWrites(cur.Backend, name, cur.BackendKeys)...), nil
	})
	if err != nil {
		return nil, err
	}
	if replaced != nil {
		e.destroyRecorded(ctx, replaced.Backend, replaced.BackendKeys)
	}
	return &Response{Status: http.StatusNoContent}, nil
}

// Bounds of a restore, so that one request cannot make the node parse
// and hold (and Raft replicate) an unbounded key record: the versions a
// backup may carry, and its decoded size (4096 RSA-4096 versions in
// Vault's decimal form, in both its policy and its archive, fit).
const (
	maxBackupVersions = 4096
	maxBackupBytes    = 64 << 20
)

// checkReplace decides whether a restore may replace the existing key
// cur. Replacing is a delete followed by a create, so it needs force and
// what a delete needs (deletion_allowed, a state that allows delete).
// It never undoes the lifecycle: a compromised key stays compromised,
// and a key pending destruction or destroyed does not get material back
// (docs/lifecycle.md), so those are refused; deleting the key first is
// the explicit, audited way.
func (e *Engine) checkReplace(ctx context.Context, cur *Policy, force bool) error {
	name := cur.Name
	if !force {
		return badRequest("key %q already exists; pass force to replace it", name)
	}
	now := e.Now()
	switch s := cur.state(now); {
	case s == StatePendingDestruction || s == StateDestroyed:
		return badRequest("key %q is %s: a restore cannot bring back its material", name, s)
	case cur.Lifecycle != nil && cur.Lifecycle.Compromised:
		return badRequest("key %q is compromised: a restore cannot replace it and clear the mark; restore under another name, or delete the key first", name)
	}
	if err := e.allow(ctx, cur, OpDelete); err != nil {
		return err
	}
	if !cur.DeletionAllowed {
		return badRequest("key %q does not allow deletion, which a restore with force is: set deletion_allowed first (keyraft keys config -deletion-allowed=true %s)", name, name)
	}
	return nil
}

// BackupKeyName returns the key name a backup (the decoded bytes of a
// restore's "backup" field, keyraft's format or Vault's) carries: the
// name a restore without a name in its path would use. The transport
// checks it against the names reserved for namespaces and then restores
// under exactly that name. It returns ErrInvalidBackup for a backup
// Restore would refuse too.
func BackupKeyName(raw []byte, now time.Time) (string, error) {
	if len(raw) > maxBackupBytes {
		return "", nil // Restore refuses it with the reason
	}
	var bf backupFile
	if err := json.Unmarshal(raw, &bf); err == nil && bf.Format == 1 && bf.Policy != nil {
		defer bf.Policy.zero()
		return bf.Policy.Name, nil
	}
	if bf.Policy != nil {
		bf.Policy.zero()
	}
	vp, err := decodeVaultBackup(raw, now)
	if errors.Is(err, errNotVaultBackup) {
		return "", ErrInvalidBackup
	}
	if err != nil {
		// A Vault backup keyraft cannot take (a convergent key, a managed
		// key…): its name, so that the restore runs and says why; Restore
		// refuses it with that reason.
		var named struct {
			Policy struct {
				Name string `json:"name"`
			} `json:"policy"`
		}
		json.Unmarshal(raw, &named)
		return named.Policy.Name, nil
	}
	defer vp.zero()
	return vp.Name, nil
}

// ErrInvalidBackup: a restore's backup is neither keyraft's nor Vault's.
var ErrInvalidBackup = errors.New("transit: invalid backup: not a keyraft or Vault transit key backup")
