package transit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/keys"
	"github.com/keyraft/keyraft/plugins/catalog"
	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/store"
)

// Keys can live on a crypto backend (a plugin: soft, pkcs11, a third
// party's): the backend generates each version and does every use by
// handle; the key record holds the handle and, for a backend that keeps no
// material, the material it returned (inside the barrier-encrypted record,
// like every other key). A key without a backend is served by package keys
// in the node's own process ("builtin").
//
// What runs on a backend: the key types the backend announces among
// backendTypes, for their operations, through pluginCrypto (the plugin's
// implementation of KeyCrypto, crypto.go). Derived and convergent keys,
// export and plaintext backup stay builtin: the backend's material is
// opaque to the node (and an HSM's never leaves it), so pluginCrypto has
// none of those abilities.

// Builtin names the in-process backend.
const Builtin = "builtin"

// CryptoBackends gives the engine the node's crypto backends.
type CryptoBackends interface {
	// Crypto returns the backend name, starting it if needed.
	Crypto(ctx context.Context, name string) (sdk.CryptoBackend, error)
	// DefaultBackend names the backend of keys created without one
	// (Builtin or "" for in-process).
	DefaultBackend() string
}

// backendTypes maps transit key types to what a backend must offer for
// them: the key type's name in the crypto contract and the operations.
var backendTypes = map[keys.Type]struct {
	name string
	ops  []sdk.Operation
}{
	keys.AES256GCM96:       {sdk.KeyAES256GCM96, aeadOps},
	keys.AES128GCM96:       {string(keys.AES128GCM96), aeadOps},
	keys.ChaCha20Poly1305:  {string(keys.ChaCha20Poly1305), aeadOps},
	keys.XChaCha20Poly1305: {string(keys.XChaCha20Poly1305), aeadOps},
	keys.Ed25519:           {sdk.KeyEd25519, []sdk.Operation{sdk.OpSign, sdk.OpVerify}},
	keys.HMAC:              {sdk.KeyHMACSHA256, []sdk.Operation{sdk.OpHMAC}},
}

var aeadOps = []sdk.Operation{sdk.OpEncrypt, sdk.OpDecrypt}

// BackendKey is one version's key on a backend.
type BackendKey struct {
	Handle []byte `json:"handle"`
	// Material is secret (the record holding it is barrier-encrypted).
	Material  []byte `json:"material,omitempty"`
	PublicKey []byte `json:"public_key,omitempty"`
}

func (k *BackendKey) ref() sdk.KeyRef { return sdk.KeyRef{Handle: k.Handle, Material: k.Material} }

// chooseBackend decides where a new key lives: the requested backend (it
// must support the key), else the default one when it supports the key,
// else builtin.
func (e *Engine) chooseBackend(ctx context.Context, p *Policy, requested string) (string, error) {
	explicit := requested != ""
	name := requested
	if !explicit && e.Backends != nil {
		name = e.Backends.DefaultBackend()
	}
	if name == "" || name == Builtin {
		return "", nil
	}
	why := ""
	bt, typeOK := backendTypes[p.Type]
	switch {
	case e.Backends == nil:
		why = "this server has no crypto backends"
	case !typeOK:
		why = fmt.Sprintf("key type %s is served in-process only", p.Type)
	case p.Derived || p.Convergent:
		why = "derived and convergent keys are served in-process only"
	case p.Type == keys.HMAC && p.KeySize != 32:
		why = "hmac keys on a backend are HMAC-SHA256 keys of 32 bytes"
	case p.Exportable || p.AllowPlaintextBackup:
		why = "exportable keys and plaintext backups need key material the node can read; a backend's material is opaque"
	}
	if why != "" {
		if explicit {
			return "", badRequest("backend %q cannot hold this key: %s", name, why)
		}
		return "", nil
	}
	b, err := e.Backends.Crypto(ctx, name)
	if err != nil {
		return "", backendError(name, err)
	}
	caps, err := b.Capabilities(ctx)
	if err != nil {
		return "", backendError(name, err)
	}
	kt, ok := caps.KeyType(bt.name)
	for _, op := range bt.ops {
		ok = ok && kt.Supports(op)
	}
	if !ok {
		if explicit {
			return "", badRequest("backend %q does not support key type %s", name, p.Type)
		}
		return "", nil
	}
	return name, nil
}

// hmacKeyFor gives an encryption key on a backend that keeps no material
// a node-side HMAC key, as every builtin version has: Vault's hmac
// endpoint works with any key, through a separate per-version HMAC key.
// A backend that keeps its material (an HSM) gets none: an HMAC key made
// in the node would not have the HSM's protection, so hmac is refused for
// those keys instead.
func hmacKeyFor(t keys.Type, g sdk.GeneratedKey) []byte {
	if !t.IsAEAD() || len(g.Material) == 0 {
		return nil
	}
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// destroyOnBackend tells the backend to forget versions (an HSM deletes
// its objects), best effort: it is for objects no committed record names
// (versions generated for a change that did not commit). Objects of
// committed versions go through destroyWrites and destroyRecorded, which
// survive a failure, a crash or an ambiguous commit.
func (e *Engine) destroyOnBackend(p *Policy, versions []int) {
	if p.Backend == "" || e.Backends == nil {
		return
	}
	ctx := context.Background()
	b, err := e.Backends.Crypto(ctx, p.Backend)
	if err != nil {
		e.log.Warn("cannot reach the backend to destroy key versions", "backend", p.Backend, "key", p.Name, "error", err)
		return
	}
	for _, n := range versions {
		if k := p.BackendKeys[n]; k != nil {
			if err := b.Destroy(ctx, k.ref()); err != nil {
				e.log.Warn("backend failed to destroy a key version", "backend", p.Backend, "key", p.Name, "version", n, "error", err)
			}
		}
	}
}

// Destruction on a crypto backend is recorded before it is attempted:
// the commit that removes versions from a key record (delete, trim, the
// leader's destruction, a restore over the key) also writes, per backend
// object, transit/backend-destroy/<backend>/<hex handle>. The node that
// made the change destroys the objects right after the commit and clears
// their records; whatever is left (a failing Destroy, a crash after the
// commit, a commit whose outcome was unknown to its node) is destroyed
// again by the leader's lifecycle pass (RetryBackendDestroys) until the
// backend confirms. Destroy is idempotent in the crypto contract, so a
// second attempt after an uncleared record is harmless. The record holds
// the handle only, never material (fsm.RecordTransitBackendDestroy).

func destroyRecordKey(backend string, handle []byte) string {
	return fsm.RecordTransitBackendDestroy + backend + "/" + hex.EncodeToString(handle)
}

// parseDestroyRecordKey splits a record name (without the prefix) into
// the backend and the handle.
func parseDestroyRecordKey(rest string) (string, []byte, error) {
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", nil, fmt.Errorf("transit: backend destroy record %q has no backend", Truncate(rest))
	}
	h, err := hex.DecodeString(rest[i+1:])
	if err != nil || len(h) == 0 {
		return "", nil, fmt.Errorf("transit: backend destroy record %q has no valid handle", Truncate(rest))
	}
	return rest[:i], h, nil
}

// destroyWrites returns the writes recording the backend objects of ks
// (versions of key name on backend) as to be destroyed, for the commit
// that removes them from the key record.
func destroyWrites(backend, name string, ks map[int]*BackendKey) []store.Write {
	if backend == "" {
		return nil
	}
	var out []store.Write
	for _, n := range slices.Sorted(maps.Keys(ks)) {
		if k := ks[n]; k != nil && len(k.Handle) != 0 {
			out = append(out, store.Write{Key: destroyRecordKey(backend, k.Handle), Value: []byte(name + " v" + strconv.Itoa(n))})
		}
	}
	return out
}

// destroyRecorded destroys, after their commit, the objects destroyWrites
// recorded, and clears the records of those the backend confirmed.
func (e *Engine) destroyRecorded(ctx context.Context, backend string, ks map[int]*BackendKey) {
	handles := make([][]byte, 0, len(ks))
	for _, k := range ks {
		if k != nil && len(k.Handle) != 0 {
			handles = append(handles, k.Handle)
		}
	}
	if _, err := e.destroyHandles(ctx, backend, handles); err != nil {
		e.log.Warn("backend objects not destroyed yet; the leader retries", "backend", backend, "error", err)
	}
}

// destroyHandles destroys objects on backend and deletes the records of
// those destroyed. It returns how many were.
func (e *Engine) destroyHandles(ctx context.Context, backend string, handles [][]byte) (int, error) {
	if len(handles) == 0 {
		return 0, nil
	}
	if e.Backends == nil {
		return 0, fmt.Errorf("crypto backend %q: this server has no crypto backends", backend)
	}
	b, err := e.Backends.Crypto(ctx, backend)
	if err != nil {
		return 0, fmt.Errorf("crypto backend %q: %w", backend, err)
	}
	var errs []error
	var done []store.Write
	for _, h := range handles {
		if err := b.Destroy(ctx, sdk.KeyRef{Handle: h}); err != nil {
			errs = append(errs, fmt.Errorf("crypto backend %q: destroying an object: %w", backend, err))
			continue
		}
		done = append(done, store.Write{Key: destroyRecordKey(backend, h), Delete: true})
	}
	if len(done) > 0 {
		// Unconditional: a record is only ever cleared. If this commit
		// fails, the next pass destroys the objects again (idempotent).
		if _, err := e.store.Commit(audit.WithEvent(ctx, nil), &store.Txn{Writes: done}); err != nil {
			errs = append(errs, fmt.Errorf("clearing backend destroy records: %w", err))
			return 0, errors.Join(errs...)
		}
	}
	return len(done), errors.Join(errs...)
}

// RetryBackendDestroys destroys the backend objects whose destruction was
// committed and not yet confirmed (see fsm.RecordTransitBackendDestroy). The leader
// runs it in every lifecycle pass (LifecycleDue). It returns how many
// objects it destroyed.
func (e *Engine) RetryBackendDestroys(ctx context.Context) (int, error) {
	names, err := e.store.List(fsm.RecordTransitBackendDestroy)
	if err != nil {
		return 0, err
	}
	byBackend := map[string][][]byte{}
	var errs []error
	for _, rest := range names {
		backend, h, err := parseDestroyRecordKey(rest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byBackend[backend] = append(byBackend[backend], h)
	}
	total := 0
	for _, backend := range slices.Sorted(maps.Keys(byBackend)) {
		hs := byBackend[backend]
		for len(hs) > 0 {
			chunk := hs[:min(len(hs), usageFlushKeys)]
			hs = hs[len(chunk):]
			n, err := e.destroyHandles(ctx, backend, chunk)
			total += n
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return total, errors.Join(errs...)
}

// backendError is a failure of a backend call as a whole: the backend is
// down, restarting, timed out, refused by its checksum. The request may be
// retried, so it is a 503 that names the backend.
func backendError(name string, err error) error {
	var te *Error
	if errors.As(err, &te) {
		return err
	}
	if errors.Is(err, catalog.ErrNotFound) || errors.Is(err, catalog.ErrNoPluginDirectory) {
		return badRequest("crypto backend %q: %v; see 'keyraft plugin list'", name, err)
	}
	msg, prefix := err.Error(), fmt.Sprintf("crypto backend %q: ", name)
	if !strings.HasPrefix(msg, prefix) { // the plugin manager's errors name it already
		msg = prefix + msg
	}
	return &Error{Status: http.StatusServiceUnavailable, Msg: msg}
}

// pluginCrypto is the crypto of a key on a crypto backend plugin: every
// use is one backend call per batch, by handle (and, for a backend that
// keeps no material, the material it returned). It has the abilities that
// need no readable material only: a node-side HMAC key (SeparateHMAC, when
// the backend keeps no material), nothing else.
type pluginCrypto struct {
	e    *Engine
	p    *Policy      // the loaded record (not changed after load)
	hmac *localCrypto // the node-side HMAC keys, see hmacKeyFor
}

var (
	_ KeyCrypto    = (*pluginCrypto)(nil)
	_ SeparateHMAC = (*pluginCrypto)(nil)
)

func (c *pluginCrypto) Name() string   { return c.p.Backend }
func (c *pluginCrypto) Has(v int) bool { return c.p.BackendKeys[v] != nil }

func (c *pluginCrypto) PublicKey(v int) string {
	if k := c.p.BackendKeys[v]; k != nil && len(k.PublicKey) > 0 {
		return base64.StdEncoding.EncodeToString(k.PublicKey) // Vault's form for ed25519
	}
	return ""
}

func (c *pluginCrypto) zero() {
	if c.hmac != nil {
		c.hmac.zero()
	}
}

func (c *pluginCrypto) HMACKeys() (KeyCrypto, bool) {
	return c.hmac, c.hmac != nil && len(c.hmac.handles) > 0
}

// generate makes version n of a backend key.
func (c *pluginCrypto) generate(ctx context.Context, e *Engine, p *Policy, n int) error {
	b, err := e.backendNamed(ctx, p.Backend)
	if err != nil {
		return err
	}
	g, err := b.Generate(ctx, backendTypes[p.Type].name)
	if err != nil {
		return backendError(p.Backend, err)
	}
	if len(g.Handle) == 0 {
		return backendError(p.Backend, errors.New("Generate returned no handle"))
	}
	if p.BackendKeys == nil {
		p.BackendKeys = map[int]*BackendKey{}
	}
	p.BackendKeys[n] = &BackendKey{Handle: g.Handle, Material: g.Material, PublicKey: g.PublicKey}
	p.generated = append(p.generated, &BackendKey{Handle: g.Handle})
	p.Versions[n] = &keys.Version{Version: n, CreationTime: e.Now().UTC(), HMACKey: hmacKeyFor(p.Type, g)}
	return nil
}

func (e *Engine) backendNamed(ctx context.Context, name string) (sdk.CryptoBackend, error) {
	if e.Backends == nil {
		return nil, backendError(name, errors.New("this server has no crypto backends"))
	}
	b, err := e.Backends.Crypto(ctx, name)
	if err != nil {
		return nil, backendError(name, err)
	}
	return b, nil
}

func (c *pluginCrypto) ref(v int) sdk.KeyRef { return c.p.BackendKeys[v].ref() }

// callPlugin makes one backend call for the items that have not failed:
// in turns an item into the call's input, out reads its result (an error
// is that item's own: a *Error as it is, another named by the backend).
// Only the failure of the call as a whole is returned.
func callPlugin[T, I, R any](ctx context.Context, c *pluginCrypto, items []T, errOf func(*T) *error,
	in func(*T) I, call func(sdk.CryptoBackend, []I) ([]R, error), out func(*T, R) error) error {
	batch := make([]I, 0, len(items))
	idx := make([]int, 0, len(items))
	for i := range items {
		if *errOf(&items[i]) == nil {
			batch, idx = append(batch, in(&items[i])), append(idx, i)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	b, err := c.e.backendNamed(ctx, c.Name())
	if err != nil {
		return err
	}
	res, err := call(b, batch)
	if err == nil {
		err = checkCount(len(batch), len(res))
	}
	if err != nil {
		return backendError(c.Name(), err)
	}
	for j, r := range res {
		it := &items[idx[j]]
		if err := out(it, r); err != nil {
			var te *Error
			if !errorsAs(err, &te) {
				err = badRequest("crypto backend %q: %v", c.Name(), err)
			}
			*errOf(it) = err
		}
	}
	return nil
}

func (c *pluginCrypto) Encrypt(ctx context.Context, items []EncryptItem) error {
	return callPlugin(ctx, c, items, func(it *EncryptItem) *error { return &it.Err },
		func(it *EncryptItem) sdk.EncryptItem {
			return sdk.EncryptItem{Key: c.ref(it.Version), Plaintext: it.Plaintext, AssocData: it.Options.AssociatedData}
		},
		func(b sdk.CryptoBackend, batch []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
			return b.Encrypt(ctx, batch)
		},
		func(it *EncryptItem, r sdk.EncryptResult) error {
			if r.Err == nil {
				it.Ciphertext = keys.FormatCiphertext(it.Version, r.Ciphertext)
			}
			return r.Err
		})
}

func (c *pluginCrypto) Decrypt(ctx context.Context, items []DecryptItem) error {
	return callPlugin(ctx, c, items, func(it *DecryptItem) *error { return &it.Err },
		func(it *DecryptItem) sdk.DecryptItem {
			return sdk.DecryptItem{Key: c.ref(it.Version), Ciphertext: it.Ciphertext, AssocData: it.Options.AssociatedData}
		},
		func(b sdk.CryptoBackend, batch []sdk.DecryptItem) ([]sdk.DecryptResult, error) {
			return b.Decrypt(ctx, batch)
		},
		func(it *DecryptItem, r sdk.DecryptResult) error {
			it.Plaintext = r.Plaintext
			if r.Err != nil {
				// A ciphertext the backend cannot open is the caller's, in
				// Vault's words; the backend named for the operator.
				return badRequest("invalid ciphertext: %v (crypto backend %q)", r.Err, c.Name())
			}
			return nil
		})
}

// Sign: the backend signs the raw input (ed25519 hashes internally;
// there are no options).
func (c *pluginCrypto) Sign(ctx context.Context, items []SignItem) error {
	return callPlugin(ctx, c, items, func(it *SignItem) *error { return &it.Err },
		func(it *SignItem) sdk.SignItem { return sdk.SignItem{Key: c.ref(it.Version), Message: it.Message} },
		func(b sdk.CryptoBackend, batch []sdk.SignItem) ([]sdk.SignResult, error) { return b.Sign(ctx, batch) },
		func(it *SignItem, r sdk.SignResult) error {
			if r.Err == nil {
				it.Signature = keys.FormatCiphertext(it.Version, r.Signature)
			}
			return r.Err
		})
}

// Verify checks ed25519 signatures with the version's public key:
// verifying needs no secret, so it needs no round trip either.
func (c *pluginCrypto) Verify(_ context.Context, items []VerifyItem) error {
	for i := range items {
		it := &items[i]
		if it.Err != nil {
			continue
		}
		pub := c.p.BackendKeys[it.Version].PublicKey
		if len(pub) != ed25519.PublicKeySize {
			it.Err = &Error{Status: http.StatusInternalServerError, Msg: fmt.Sprintf("key %q version %d has no valid public key", c.p.Name, it.Version)}
			continue
		}
		it.Valid = ed25519.Verify(pub, it.Message, it.Signature)
	}
	return nil
}

// HMAC is HMAC-SHA256, the only algorithm of hmac-sha256 keys.
func (c *pluginCrypto) HMAC(ctx context.Context, items []HMACItem) error {
	return callPlugin(ctx, c, items, func(it *HMACItem) *error { return &it.Err },
		func(it *HMACItem) sdk.HMACItem { return sdk.HMACItem{Key: c.ref(it.Version), Message: it.Message} },
		func(b sdk.CryptoBackend, batch []sdk.HMACItem) ([]sdk.HMACResult, error) { return b.HMAC(ctx, batch) },
		func(it *HMACItem, r sdk.HMACResult) error {
			if r.Err == nil {
				it.MAC = keys.FormatCiphertext(it.Version, r.MAC)
			}
			return r.Err
		})
}

// abandonGenerated tells the backend to forget the versions generated for
// changes that will not commit, so no HSM object is left that no record
// names.
func (e *Engine) abandonGenerated(ps ...*Policy) {
	for _, p := range ps {
		if p == nil || len(p.generated) == 0 {
			continue
		}
		orphans := &Policy{Name: p.Name, Backend: p.Backend, BackendKeys: map[int]*BackendKey{}}
		for i, k := range p.generated {
			orphans.BackendKeys[i] = k
		}
		p.generated = nil
		e.destroyOnBackend(orphans, slices.Collect(maps.Keys(orphans.BackendKeys)))
	}
}

// checkCount refuses an answer without exactly one result per item (the
// results are matched to items by position).
func checkCount(items, results int) error {
	if items != results {
		return fmt.Errorf("backend returned %d results for %d items", results, items)
	}
	return nil
}
