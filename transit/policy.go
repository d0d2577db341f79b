package transit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keyraft/keyraft/keys"
)

// Policy is a named transit key: its configuration and every version's
// material. It is stored as JSON inside a barrier-encrypted record at
// transit/key/<name>.
type Policy struct {
	Name                 string                `json:"name"`
	Type                 keys.Type             `json:"type"`
	Derived              bool                  `json:"derived"`
	Convergent           bool                  `json:"convergent_encryption"`
	Exportable           bool                  `json:"exportable"`
	AllowPlaintextBackup bool                  `json:"allow_plaintext_backup"`
	DeletionAllowed      bool                  `json:"deletion_allowed"`
	MinDecryptionVersion int                   `json:"min_decryption_version"`
	MinEncryptionVersion int                   `json:"min_encryption_version"`
	MinAvailableVersion  int                   `json:"min_available_version"`
	LatestVersion        int                   `json:"latest_version"`
	AutoRotatePeriod     time.Duration         `json:"auto_rotate_period"`
	KeySize              int                   `json:"key_size,omitempty"`
	Versions             map[int]*keys.Version `json:"versions"`
	// Backend names the crypto backend holding the key ("" = builtin,
	// in this process); BackendKeys are its versions there.
	Backend     string              `json:"backend,omitempty"`
	BackendKeys map[int]*BackendKey `json:"backend_keys,omitempty"`
	// generated are the backend versions made for this copy and not yet
	// committed: if the change is abandoned, the backend forgets them.
	generated []*BackendKey
	// Lifecycle is the key's state and history (lifecycle.go); nil in
	// records made before lifecycles, which are active.
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`
	// Imported: the key's material came from outside (import.go); it is
	// rotated only when AllowRotation says so, as in Vault.
	Imported      bool `json:"imported_key,omitempty"`
	AllowRotation bool `json:"allow_rotation,omitempty"`
}

func (p *Policy) spec() keys.Spec {
	return keys.Spec{Type: p.Type, Derived: p.Derived, Convergent: p.Convergent}
}

func (p *Policy) marshal() ([]byte, error) { return json.Marshal(p) }

func unmarshalPolicy(b []byte) (*Policy, error) {
	var p Policy
	if err := json.Unmarshal(b, &p); err != nil {
		// Never the JSON error itself: it can quote a value of the record.
		return nil, fmt.Errorf("transit: decoding key record: %s", decodeErrText(err))
	}
	if p.Versions == nil || p.LatestVersion < 1 || p.Versions[p.LatestVersion] == nil {
		return nil, fmt.Errorf("transit: key record %q has no latest version", p.Name)
	}
	if err := p.checkBackendKeys(); err != nil {
		return nil, fmt.Errorf("transit: key record %q: %w", p.Name, err)
	}
	return &p, nil
}

// checkBackendKeys checks that a key on a backend has a handle for every
// version and nothing else, and a builtin key has no backend keys: the
// operations index BackendKeys by version without looking twice.
func (p *Policy) checkBackendKeys() error {
	if p.Backend == "" {
		if len(p.BackendKeys) > 0 {
			return errors.New("backend versions on a key without a backend")
		}
		return nil
	}
	for n, v := range p.Versions {
		if v == nil {
			return fmt.Errorf("version %d is empty", n)
		}
		if k := p.BackendKeys[n]; k == nil || len(k.Handle) == 0 {
			return fmt.Errorf("version %d has no handle on backend %q", n, p.Backend)
		}
	}
	if len(p.BackendKeys) != len(p.Versions) {
		return errors.New("backend versions without a key version")
	}
	return nil
}

// zero overwrites every version's material.
func (p *Policy) zero() {
	for _, v := range p.Versions {
		v.Zero()
	}
	for _, k := range p.BackendKeys {
		clear(k.Material)
	}
}

// clone returns a deep copy for read-modify-write; the cached policy stays
// untouched until the write commits.
func (p *Policy) clone() *Policy {
	c := *p
	c.Versions = make(map[int]*keys.Version, len(p.Versions))
	for n, v := range p.Versions {
		vc := *v
		vc.Secret = append([]byte(nil), v.Secret...)
		vc.HMACKey = append([]byte(nil), v.HMACKey...)
		c.Versions[n] = &vc
	}
	if p.BackendKeys != nil {
		c.BackendKeys = make(map[int]*BackendKey, len(p.BackendKeys))
		for n, k := range p.BackendKeys {
			c.BackendKeys[n] = &BackendKey{Handle: append([]byte(nil), k.Handle...),
				Material: append([]byte(nil), k.Material...), PublicKey: append([]byte(nil), k.PublicKey...)}
		}
	}
	c.Lifecycle = p.Lifecycle.clone()
	return &c
}

// lastRotation is when the newest version was made.
func (p *Policy) lastRotation() time.Time { return p.Versions[p.LatestVersion].CreationTime }

// info is the GET transit/keys/:name response (Vault's field names).
func (p *Policy) info(c KeyCrypto) map[string]any {
	versions := map[string]any{}
	for n, v := range p.Versions {
		if p.Type.IsAsymmetric() {
			entry := map[string]any{
				"creation_time": v.CreationTime.UTC().Format(time.RFC3339Nano),
				"name":          publicKeyName(p.Type),
			}
			if pub := c.PublicKey(n); pub != "" {
				entry["public_key"] = pub
			}
			versions[strconv.Itoa(n)] = entry
		} else {
			versions[strconv.Itoa(n)] = v.CreationTime.Unix()
		}
	}
	d := map[string]any{
		"name":                   p.Name,
		"type":                   string(p.Type),
		"keys":                   versions,
		"latest_version":         p.LatestVersion,
		"min_available_version":  p.MinAvailableVersion,
		"min_decryption_version": p.MinDecryptionVersion,
		"min_encryption_version": p.MinEncryptionVersion,
		"deletion_allowed":       p.DeletionAllowed,
		"derived":                p.Derived,
		"exportable":             p.Exportable,
		"allow_plaintext_backup": p.AllowPlaintextBackup,
		"auto_rotate_period":     int64(p.AutoRotatePeriod / time.Second),
		"imported_key":           p.Imported,
		"supports_encryption":    p.Type.SupportsEncryption(),
		"supports_decryption":    p.Type.SupportsDecryption(),
		"supports_derivation":    p.Type.SupportsDerivation(),
		"supports_signing":       p.Type.SupportsSigning(),
		"backend":                c.Name(),
	}
	if p.Imported {
		d["imported_key_allow_rotation"] = p.AllowRotation // Vault's name
		d["allow_rotation"] = p.AllowRotation
	}
	if p.Derived {
		d["kdf"] = "hkdf_sha256"
		d["convergent_encryption"] = p.Convergent
		if p.Convergent {
			d["convergent_encryption_version"] = 3
		}
	}
	if p.Type == keys.HMAC {
		d["key_size"] = p.KeySize
	}
	return d
}

// publicKeyName is the "name" of an asymmetric version in the key info:
// the curve for ecdsa keys (as Vault names them), the type otherwise.
func publicKeyName(t keys.Type) string {
	switch t {
	case keys.ECDSAP256:
		return "P-256"
	case keys.ECDSAP384:
		return "P-384"
	case keys.ECDSAP521:
		return "P-521"
	}
	return string(t)
}

// maxVersions bounds a key's version numbers (a restored backup included).
const maxVersions = 1 << 20

// validate checks the invariants create, rotate, config and trim keep, for
// a policy that comes from outside (a backup): versions contiguous from
// the first available one to the latest, the min versions inside them,
// and settings create would accept.
func (p *Policy) validate() error {
	if _, err := keys.ParseType(string(p.Type)); err != nil {
		return err
	}
	if p.Backend != "" || len(p.BackendKeys) > 0 {
		// A backend's handles name objects of that backend: a backup
		// could point a new key at someone else's. Such keys are never
		// backed up, so a backup holding one is forged.
		return errors.New("keys on a crypto backend cannot come from a backup")
	}
	first := max(p.MinAvailableVersion, 1)
	switch {
	case p.LatestVersion < 1 || p.LatestVersion > maxVersions:
		return fmt.Errorf("latest_version %d out of range", p.LatestVersion)
	case len(p.Versions) != p.LatestVersion-first+1:
		return fmt.Errorf("versions %d to %d are not all present", first, p.LatestVersion)
	case p.MinDecryptionVersion < first || p.MinDecryptionVersion > p.LatestVersion:
		return fmt.Errorf("min_decryption_version %d outside %d..%d", p.MinDecryptionVersion, first, p.LatestVersion)
	case p.MinEncryptionVersion != 0 && (p.MinEncryptionVersion < p.MinDecryptionVersion || p.MinEncryptionVersion > p.LatestVersion):
		return fmt.Errorf("min_encryption_version %d out of range", p.MinEncryptionVersion)
	case p.AutoRotatePeriod != 0 && p.AutoRotatePeriod < time.Hour:
		return fmt.Errorf("auto_rotate_period must be 0 or at least an hour")
	case p.KeySize != 0 && p.Type != keys.HMAC:
		return fmt.Errorf("key_size is only valid for hmac keys")
	case p.Derived && !p.Type.SupportsDerivation(), p.Convergent && (!p.Derived || !p.Type.IsAEAD()):
		return fmt.Errorf("derivation settings do not fit key type %s", p.Type)
	}
	if err := p.Lifecycle.validate(); err != nil {
		return err
	}
	for n := first; n <= p.LatestVersion; n++ {
		if v := p.Versions[n]; v == nil || v.Version != n {
			return fmt.Errorf("version %d is missing or inconsistent", n)
		}
	}
	return nil
}
