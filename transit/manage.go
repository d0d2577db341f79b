package transit

import (
	"context"
	"net/http"
	"sort"
	"strconv"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/keys"
	"github.com/keyraft/keyraft/store"
)

// CreateKey handles POST transit/keys/:name. Creating a key that exists
// is not an error (as in Vault): its settings are not changed and the
// response is the key's info with a warning. The parameters are checked
// either way.
func (e *Engine) CreateKey(ctx context.Context, name string, in *Fields) (*Response, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if _, err := policyParams(name, in, keys.AES256GCM96); err != nil {
		return nil, err
	}
	var created bool
	_, err := e.update(ctx, name, func(cur *Policy) (*Policy, error) {
		created = false
		if cur != nil {
			return nil, errNothingToDo
		}
		p, err := e.newPolicy(name, in, keys.AES256GCM96)
		if err == nil {
			err = e.startLifecycle(ctx, p, in)
		}
		created = err == nil
		return p, err
	})
	if err != nil && err != errNothingToDo {
		return nil, err
	}
	resp, err := e.ReadKey(name)
	if resp != nil && !created {
		resp.Warnings = append(resp.Warnings, "key already exists; its settings were not changed")
	}
	return resp, err
}

// ReadKey handles GET transit/keys/:name.
func (e *Engine) ReadKey(name string) (*Response, error) {
	l, err := e.get(name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, notFound("key %q not found", name)
	}
	d := l.policy.info(l.crypto)
	l.policy.lifecycleInfo(d, e.Now())
	e.usageInfo(l.policy, d)
	return flag(l.policy, ok(d)), nil
}

// ListKeys handles LIST transit/keys. No keys is a 404 without a message
// ({"errors":[]}), exactly as Vault answers an empty list: clients (the
// vault CLI, keyraft's api package) read that shape as "no keys".
func (e *Engine) ListKeys() (*Response, error) {
	names, err := e.store.List(fsm.RecordTransitKey)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, &Error{Status: http.StatusNotFound}
	}
	sort.Strings(names)
	return ok(map[string]any{"keys": names}), nil
}

// DeleteKey handles DELETE transit/keys/:name; the key must allow it. A
// key that does not exist is a 400, as in Vault: the caller probably
// mistyped the name.
func (e *Engine) DeleteKey(ctx context.Context, name string) (*Response, error) {
	var deleted *Policy
	_, err := e.updateTxn(ctx, name, func(p *Policy) (*Policy, []store.Write, error) {
		deleted = p
		if p == nil {
			return nil, nil, badRequest("key %q not found", name)
		}
		if err := e.allow(ctx, p, OpDelete); err != nil {
			return nil, nil, err
		}
		if !p.DeletionAllowed {
			return nil, nil, badRequest("deletion is not allowed for this key")
		}
		w := []store.Write{{Key: fsm.RecordTransitUsage + name, Delete: true}, store.PurgeWrite(fsm.RecordTransitKey + name)}
		return nil, append(w, destroyWrites(p.Backend, name, p.BackendKeys)...), nil
	})
	if err != nil {
		return nil, err
	}
	e.cache.Forget(name)
	if deleted != nil {
		e.destroyRecorded(ctx, deleted.Backend, deleted.BackendKeys)
	}
	return &Response{Status: http.StatusNoContent}, nil
}

// RotateKey handles POST transit/keys/:name/rotate.
func (e *Engine) RotateKey(ctx context.Context, name string) (*Response, error) {
	_, err := e.update(ctx, name, func(p *Policy) (*Policy, error) {
		if p == nil {
			return nil, badRequest("key %q not found", name)
		}
		if err := e.allow(ctx, p, OpRotate); err != nil {
			return nil, err
		}
		return p, e.rotateFor(ctx, p, "")
	})
	if err != nil {
		return nil, err
	}
	return e.ReadKey(name)
}

// ConfigKey handles POST transit/keys/:name/config. Only the given fields
// change.
func (e *Engine) ConfigKey(ctx context.Context, name string, in *Fields) (*Response, error) {
	var warnings []string
	_, err := e.update(ctx, name, func(p *Policy) (*Policy, error) {
		warnings = nil
		if p == nil {
			return nil, badRequest("key %q not found", name)
		}
		if err := e.allow(ctx, p, OpConfig); err != nil {
			return nil, err
		}
		if err := e.configLifecycle(ctx, p, in); err != nil {
			return nil, err
		}
		if in.Has("min_decryption_version") {
			v, err := in.Int("min_decryption_version", 0)
			if err != nil {
				return nil, err
			}
			if v < 0 {
				return nil, badRequest("min_decryption_version cannot be negative")
			}
			if v == 0 {
				v = 1
				warnings = append(warnings, "min_decryption_version 0 means 1: key versions start at 1")
			}
			switch {
			case v > p.LatestVersion:
				return nil, badRequest("cannot set min_decryption_version to %d: the latest key version is %d", v, p.LatestVersion)
			case v < p.MinAvailableVersion:
				return nil, badRequest("cannot set min_decryption_version to %d: versions below %d were trimmed", v, p.MinAvailableVersion)
			}
			p.MinDecryptionVersion = v
		}
		if in.Has("min_encryption_version") {
			v, err := in.Int("min_encryption_version", 0)
			if err != nil {
				return nil, err
			}
			if v < 0 || v > p.LatestVersion {
				return nil, badRequest("cannot set min_encryption_version to %d: it must be 0 (latest) or at most the latest version %d", v, p.LatestVersion)
			}
			p.MinEncryptionVersion = v
		}
		if p.MinEncryptionVersion != 0 && p.MinEncryptionVersion < p.MinDecryptionVersion {
			return nil, badRequest("min_encryption_version (%d) cannot be below min_decryption_version (%d)", p.MinEncryptionVersion, p.MinDecryptionVersion)
		}
		if p.MinAvailableVersion > 0 && p.MinEncryptionVersion < p.MinAvailableVersion {
			// As in Vault: a trimmed key keeps a minimum at or above the
			// trim (0, "the latest", could later fall below it).
			return nil, badRequest("min_encryption_version (%d) cannot be below min_available_version (%d) of a trimmed key", p.MinEncryptionVersion, p.MinAvailableVersion)
		}
		var err error
		if in.Has("deletion_allowed") {
			if p.DeletionAllowed, err = in.Bool("deletion_allowed", false); err != nil {
				return nil, err
			}
		}
		if in.Has("exportable") {
			v, err := in.Bool("exportable", false)
			if err != nil {
				return nil, err
			}
			// Once set, it stays: false is ignored, as in Vault (a key
			// once exportable may have been exported).
			p.Exportable = p.Exportable || v
		}
		if in.Has("allow_plaintext_backup") {
			v, err := in.Bool("allow_plaintext_backup", false)
			if err != nil {
				return nil, err
			}
			p.AllowPlaintextBackup = p.AllowPlaintextBackup || v // as exportable
		}
		if _, ok := e.cryptoOf(p).(Exporter); !ok && (p.Exportable || p.AllowPlaintextBackup) {
			return nil, badRequest("key lives on crypto backend %q, whose key material the node cannot read: it cannot be made exportable or backed up in plaintext", p.Backend)
		}
		if in.Has("auto_rotate_period") {
			if p.AutoRotatePeriod, err = rotatePeriod(in); err != nil {
				return nil, err
			}
			if p.AutoRotatePeriod > 0 && p.Imported && !p.AllowRotation {
				return nil, badRequest("auto_rotate_period cannot be set on an imported key that does not allow rotation (allow_rotation is false)")
			}
		}
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	resp, err := e.ReadKey(name)
	if resp != nil {
		// After the read's own (a compromised key's), not instead of it.
		resp.Warnings = append(resp.Warnings, warnings...)
	}
	return resp, err
}

// TrimKey handles POST transit/keys/:name/trim: versions below
// min_available_version are deleted for good.
func (e *Engine) TrimKey(ctx context.Context, name string, in *Fields) (*Response, error) {
	// Trimmed versions are destroyed: every node purges its disk of them
	// (store.PurgeWrite), as for a key's destruction.
	var trimmed *Policy // the trimmed versions on a backend, to destroy there
	_, err := e.updateTxn(ctx, name, func(p *Policy) (*Policy, []store.Write, error) {
		trimmed = nil
		if p == nil {
			return nil, nil, badRequest("key %q not found", name)
		}
		if err := e.allow(ctx, p, OpTrim); err != nil {
			return nil, nil, err
		}
		if !in.Has("min_available_version") {
			return nil, nil, badRequest("missing min_available_version")
		}
		v, err := in.Int("min_available_version", 0)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case v <= 0:
			return nil, nil, badRequest("min_available_version must be positive")
		case v < p.MinAvailableVersion:
			return nil, nil, badRequest("min_available_version cannot go down (it is %d)", p.MinAvailableVersion)
		case p.MinEncryptionVersion == 0:
			// As in Vault: with min_encryption_version 0 (the latest) a
			// later rotation's min could fall below the trimmed versions.
			return nil, nil, badRequest("min_available_version cannot be set while min_encryption_version is 0 (the latest version): set min_encryption_version first")
		case v > p.MinDecryptionVersion:
			return nil, nil, badRequest("min_available_version (%d) cannot be above min_decryption_version (%d)", v, p.MinDecryptionVersion)
		case v > p.MinEncryptionVersion:
			return nil, nil, badRequest("min_available_version (%d) cannot be above min_encryption_version (%d)", v, p.MinEncryptionVersion)
		}
		for n, ver := range p.Versions {
			if n < v {
				ver.Zero()
				delete(p.Versions, n)
			}
		}
		// A backend's objects of the trimmed versions are destroyed there
		// too (a key in this process has none).
		trimmed = &Policy{Name: p.Name, Backend: p.Backend, BackendKeys: map[int]*BackendKey{}}
		for n, k := range p.BackendKeys {
			if n < v {
				trimmed.BackendKeys[n] = &BackendKey{Handle: k.Handle}
				clear(k.Material)
				delete(p.BackendKeys, n)
			}
		}
		p.MinAvailableVersion = v
		w := []store.Write{store.PurgeWrite(fsm.RecordTransitKey + name)}
		return p, append(w, destroyWrites(trimmed.Backend, name, trimmed.BackendKeys)...), nil
	})
	if err != nil {
		return nil, err
	}
	if trimmed != nil {
		e.destroyRecorded(ctx, trimmed.Backend, trimmed.BackendKeys)
	}
	return e.ReadKey(name)
}

// Export handles GET transit/export/:kind/:name(/:version).
func (e *Engine) Export(kind, name, version string) (*Response, error) {
	switch kind {
	case keys.ExportEncryptionKey, keys.ExportSigningKey, keys.ExportHMACKey, keys.ExportPublicKey:
	default:
		return nil, badRequest("invalid export type %q: use encryption-key, signing-key, hmac-key or public-key", kind)
	}
	l, err := e.get(name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, notFound("key %q not found", name)
	}
	p := l.policy
	if err := e.allow(context.Background(), p, OpExport); err != nil {
		return nil, err
	}
	if kind != keys.ExportPublicKey && !p.Exportable {
		return nil, badRequest("private key material is not exportable")
	}
	x, can := l.crypto.(Exporter)
	if !can {
		return nil, badRequest("key %q lives on crypto backend %q, whose key material the node cannot read: it cannot be exported", p.Name, l.crypto.Name())
	}
	versions := []int{}
	switch version {
	case "":
		versions = x.Versions()
		sort.Ints(versions)
	case "latest":
		versions = append(versions, p.LatestVersion)
	default:
		n, err := strconv.Atoi(version)
		if err != nil || !l.crypto.Has(n) {
			return nil, badRequest("invalid key version %q", version)
		}
		versions = append(versions, n)
	}
	out := map[string]any{}
	for _, n := range versions {
		s, err := x.Export(kind, n)
		if err != nil {
			return nil, userError(err)
		}
		out[strconv.Itoa(n)] = s
	}
	return ok(map[string]any{"name": p.Name, "type": string(p.Type), "keys": out}), nil
}
