package transit

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
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
// backendTypes, for their operations. Derived and convergent keys, export
// and plaintext backup stay builtin: the backend's material is opaque to
// the node (and an HSM's never leaves it).

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

// generateOnBackend makes version n of a backend key.
func (e *Engine) generateOnBackend(ctx context.Context, p *Policy, n int) error {
	b, err := e.Backends.Crypto(ctx, p.Backend)
	if err != nil {
		return backendError(p.Backend, err)
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
	return &Error{Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf("crypto backend %q: %v", name, err)}
}

// itemsOf returns the request's items: its batch, or itself.
func itemsOf(in *Fields) ([]*Fields, error) {
	items, isBatch, err := in.Batch("batch_input")
	if err != nil {
		return nil, err
	}
	if !isBatch {
		items = []*Fields{in}
	}
	return items, nil
}

// itemOutcome is one item's answer, prepared before run formats them.
type itemOutcome struct {
	data map[string]any
	err  error
}

// itemResult is one item's part of a backend call: the key version it
// used and the backend's output, or the item's own error.
type itemResult struct {
	version int
	out     []byte
	err     error
}

// callBackend makes one backend call for a request's items: prepare turns
// item i into the call's input and the key version it uses (or an error
// for that item alone), unpack reads an item's result. Only the failure
// of the call as a whole fails the request.
func callBackend[I, R any](ctx context.Context, e *Engine, l *loaded, n int,
	prepare func(i int) (I, int, error),
	call func(b sdk.CryptoBackend, batch []I) ([]R, error),
	unpack func(R) ([]byte, error)) ([]itemResult, error) {
	res := make([]itemResult, n)
	var batch []I
	var idx []int
	for i := range n {
		in, v, err := prepare(i)
		res[i].version, res[i].err = v, err
		if err == nil {
			batch, idx = append(batch, in), append(idx, i)
		}
	}
	if len(batch) == 0 {
		return res, nil
	}
	b, err := e.backendOf(ctx, l)
	if err != nil {
		return nil, err
	}
	out, err := call(b, batch)
	if err == nil {
		err = checkCount(len(batch), len(out))
	}
	if err != nil {
		return nil, backendError(l.policy.Backend, err)
	}
	for j, r := range out {
		i := idx[j]
		if res[i].out, err = unpack(r); err != nil {
			res[i].err = badRequest("crypto backend %q: %v", l.policy.Backend, err)
		}
	}
	return res, nil
}

// outcomes turns results into answers, the output under name as a
// vault:v<N>: string.
func outcomes(res []itemResult, name string) []itemOutcome {
	out := make([]itemOutcome, len(res))
	for i, r := range res {
		if r.err != nil {
			out[i].err = r.err
			continue
		}
		out[i].data = map[string]any{name: keys.FormatCiphertext(r.version, r.out), "key_version": r.version}
	}
	return out
}

func (e *Engine) backendOf(ctx context.Context, l *loaded) (sdk.CryptoBackend, error) {
	if e.Backends == nil {
		return nil, backendError(l.policy.Backend, errors.New("this server has no crypto backends"))
	}
	b, err := e.Backends.Crypto(ctx, l.policy.Backend)
	if err != nil {
		return nil, backendError(l.policy.Backend, err)
	}
	return b, nil
}

// backendEncryptVersion is encryptVersion for a backend key.
func backendEncryptVersion(l *loaded, item *Fields) (int, *BackendKey, error) {
	v, err := item.Int("key_version", 0)
	if err != nil {
		return 0, nil, err
	}
	p := l.policy
	if v == 0 {
		v = p.LatestVersion
	}
	switch {
	case v < 0 || v > p.LatestVersion:
		return 0, nil, badRequest("invalid key_version %d: the latest version is %d", v, p.LatestVersion)
	case p.MinEncryptionVersion != 0 && v < p.MinEncryptionVersion:
		return 0, nil, badRequest("key_version %d is below the key's min_encryption_version %d", v, p.MinEncryptionVersion)
	case p.BackendKeys[v] == nil:
		return 0, nil, badRequest("key version %d has been trimmed", v)
	}
	return v, p.BackendKeys[v], nil
}

func noContext(item *Fields) error {
	if item.Has("context") || item.Has("nonce") {
		return badRequest("context and nonce are only for derived keys; this key is not derived")
	}
	return nil
}

// backendDecryptInput parses a ciphertext for a backend key.
func backendDecryptInput(l *loaded, item *Fields) (sdk.DecryptItem, error) {
	s, err := item.String("ciphertext", "")
	if err != nil {
		return sdk.DecryptItem{}, err
	}
	if s == "" {
		return sdk.DecryptItem{}, badRequest("missing ciphertext to decrypt")
	}
	if err := noContext(item); err != nil {
		return sdk.DecryptItem{}, err
	}
	v, body, err := keys.ParseCiphertext(s)
	if err != nil {
		return sdk.DecryptItem{}, userError(err)
	}
	ad, err := item.Base64("associated_data")
	if err != nil {
		return sdk.DecryptItem{}, err
	}
	p := l.policy
	switch {
	case v < p.MinDecryptionVersion:
		return sdk.DecryptItem{}, badRequest("ciphertext or signature version is disallowed by policy (too old)")
	case v > p.LatestVersion || p.BackendKeys[v] == nil:
		return sdk.DecryptItem{}, badRequest("invalid ciphertext: key version %d not found", v)
	}
	return sdk.DecryptItem{Key: p.BackendKeys[v].ref(), Ciphertext: body, AssocData: ad}, nil
}

// backendEncrypt encrypts plaintexts (one per item; nil for an item that
// already failed) in one backend call.
func (e *Engine) backendEncrypt(ctx context.Context, l *loaded, items []*Fields, pts [][]byte, fail []error) ([]itemOutcome, error) {
	res, err := callBackend(ctx, e, l, len(items),
		func(i int) (sdk.EncryptItem, int, error) {
			if fail[i] != nil {
				return sdk.EncryptItem{}, 0, fail[i]
			}
			v, k, err := backendEncryptVersion(l, items[i])
			if err == nil {
				err = noContext(items[i])
			}
			var ad []byte
			if err == nil {
				ad, err = items[i].Base64("associated_data")
			}
			if err != nil {
				return sdk.EncryptItem{}, 0, err
			}
			return sdk.EncryptItem{Key: k.ref(), Plaintext: pts[i], AssocData: ad}, v, nil
		},
		func(b sdk.CryptoBackend, batch []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
			return b.Encrypt(ctx, batch)
		},
		func(r sdk.EncryptResult) ([]byte, error) { return r.Ciphertext, r.Err })
	if err != nil {
		return nil, err
	}
	// Every encryption counts toward the version's nonce budget, on a
	// backend as in process (encrypt, rewrap and datakey all come here).
	for _, r := range res {
		if r.err == nil {
			e.countEncryption(l.policy, r.version)
		}
	}
	return outcomes(res, "ciphertext"), nil
}

// backendDecrypt decrypts every item's ciphertext in one backend call.
func (e *Engine) backendDecrypt(ctx context.Context, l *loaded, items []*Fields) ([][]byte, []error, error) {
	res, err := callBackend(ctx, e, l, len(items),
		func(i int) (sdk.DecryptItem, int, error) {
			d, err := backendDecryptInput(l, items[i])
			return d, 0, err
		},
		func(b sdk.CryptoBackend, batch []sdk.DecryptItem) ([]sdk.DecryptResult, error) {
			return b.Decrypt(ctx, batch)
		},
		func(r sdk.DecryptResult) ([]byte, error) { return r.Plaintext, r.Err })
	if err != nil {
		return nil, nil, err
	}
	pts, errs := make([][]byte, len(res)), make([]error, len(res))
	for i, r := range res {
		pts[i], errs[i] = r.out, r.err
	}
	return pts, errs, nil
}

// runOutcomes answers with prepared per-item outcomes, in run's format.
// run calls its function once per item, in order (Batch decodes the
// items anew, so they are matched by position, not by pointer).
func (e *Engine) runOutcomes(in *Fields, out []itemOutcome) (*Response, error) {
	i := 0
	return e.run(in, func(*Fields) (map[string]any, error) {
		if i >= len(out) {
			return nil, errors.New("transit: more items than outcomes")
		}
		o := out[i]
		i++
		return o.data, o.err
	})
}

// encryptBackend is Encrypt for a key on a backend.
func (e *Engine) encryptBackend(ctx context.Context, l *loaded, in *Fields) (*Response, error) {
	items, err := itemsOf(in)
	if err != nil {
		return nil, err
	}
	pts := make([][]byte, len(items))
	fail := make([]error, len(items))
	for i, item := range items {
		pts[i], _, fail[i] = encryptInput(item)
	}
	out, err := e.backendEncrypt(ctx, l, items, pts, fail)
	if err != nil {
		return nil, err
	}
	return e.runOutcomes(in, out)
}

// decryptBackend is Decrypt for a key on a backend.
func (e *Engine) decryptBackend(ctx context.Context, l *loaded, in *Fields) (*Response, error) {
	items, err := itemsOf(in)
	if err != nil {
		return nil, err
	}
	pts, errs, err := e.backendDecrypt(ctx, l, items)
	if err != nil {
		return nil, err
	}
	out := make([]itemOutcome, len(items))
	for i := range items {
		if errs[i] != nil {
			out[i].err = errs[i]
			continue
		}
		out[i].data = map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pts[i])}
		clear(pts[i])
	}
	return e.runOutcomes(in, out)
}

// rewrapBackend is Rewrap for a key on a backend: two backend calls, the
// plaintexts never leave the node's memory.
func (e *Engine) rewrapBackend(ctx context.Context, l *loaded, in *Fields) (*Response, error) {
	items, err := itemsOf(in)
	if err != nil {
		return nil, err
	}
	pts, errs, err := e.backendDecrypt(ctx, l, items)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, pt := range pts {
			clear(pt)
		}
	}()
	out, err := e.backendEncrypt(ctx, l, items, pts, errs)
	if err != nil {
		return nil, err
	}
	return e.runOutcomes(in, out)
}

// refuseOnBackend is the answer for operations a backend key does not
// offer.
func refuseOnBackend(l *loaded, op string) error {
	return badRequest("key %q lives on crypto backend %q, which does not offer %s for it", l.policy.Name, l.policy.Backend, op)
}

// dataKeyBackend is DataKey for a key on a backend.
func (e *Engine) dataKeyBackend(ctx context.Context, l *loaded, kind string, bits int, in *Fields) (*Response, error) {
	dk := make([]byte, bits/8)
	if _, err := rand.Read(dk); err != nil {
		return nil, err
	}
	defer clear(dk)
	out, err := e.backendEncrypt(ctx, l, []*Fields{in}, [][]byte{dk}, []error{nil})
	if err != nil {
		return nil, err
	}
	if out[0].err != nil {
		return nil, out[0].err
	}
	data := out[0].data
	if kind == "plaintext" {
		data["plaintext"] = base64.StdEncoding.EncodeToString(dk)
	}
	return ok(data), nil
}

// signBackend is Sign for an ed25519 key on a backend: the backend signs
// the raw input (ed25519 hashes internally; there are no hash options).
func (e *Engine) signBackend(ctx context.Context, l *loaded, in *Fields) (*Response, error) {
	items, err := itemsOf(in)
	if err != nil {
		return nil, err
	}
	if err := refuseSignOptions(in); err != nil {
		return nil, err
	}
	res, err := callBackend(ctx, e, l, len(items),
		func(i int) (sdk.SignItem, int, error) {
			msg, err := input(items[i])
			if err == nil {
				err = refuseSignOptions(items[i])
			}
			if err != nil {
				return sdk.SignItem{}, 0, err
			}
			v, k, err := backendEncryptVersion(l, in)
			if err != nil {
				return sdk.SignItem{}, 0, err
			}
			return sdk.SignItem{Key: k.ref(), Message: msg}, v, nil
		},
		func(b sdk.CryptoBackend, batch []sdk.SignItem) ([]sdk.SignResult, error) { return b.Sign(ctx, batch) },
		func(r sdk.SignResult) ([]byte, error) { return r.Signature, r.Err })
	if err != nil {
		return nil, err
	}
	return e.runOutcomes(in, outcomes(res, "signature"))
}

// refuseSignOptions refuses the options that mean nothing for ed25519
// rather than ignoring them.
func refuseSignOptions(f *Fields) error {
	if pre, err := f.Bool("prehashed", false); err != nil || pre {
		return badRequest("prehashed input is not supported for ed25519 keys")
	}
	for _, name := range []string{"context", "salt_length"} {
		if f.Has(name) {
			return badRequest("%s is not supported for this key", name)
		}
	}
	return nil
}

// verifyBackendSignature checks an ed25519 signature of a backend key
// with the version's public key: verifying needs no secret, so it needs
// no round trip either.
func verifyBackendSignature(l *loaded, msg []byte, sig string) (bool, error) {
	v, body, err := keys.ParseSignature(sig)
	if err != nil {
		return false, err
	}
	p := l.policy
	switch {
	case v < p.MinDecryptionVersion:
		return false, badRequest("ciphertext or signature version is disallowed by policy (too old)")
	case v > p.LatestVersion || p.BackendKeys[v] == nil:
		return false, badRequest("invalid signature: key version %d not found", v)
	}
	pub := p.BackendKeys[v].PublicKey
	if len(pub) != ed25519.PublicKeySize {
		return false, &Error{Status: http.StatusInternalServerError, Msg: fmt.Sprintf("key %q version %d has no valid public key", p.Name, v)}
	}
	return ed25519.Verify(pub, msg, body), nil
}

// hmacBackend computes the HMAC of every item's input with an hmac key
// on a backend (HMAC-SHA256: the only algorithm of hmac-sha256 keys).
func (e *Engine) hmacBackend(ctx context.Context, l *loaded, in *Fields, items []*Fields) ([]itemResult, error) {
	return callBackend(ctx, e, l, len(items),
		func(i int) (sdk.HMACItem, int, error) {
			msg, err := input(items[i])
			if err == nil {
				err = backendHMACAlgorithm(in, items[i])
			}
			if err != nil {
				return sdk.HMACItem{}, 0, err
			}
			v, k, err := backendEncryptVersion(l, items[i])
			if err != nil {
				return sdk.HMACItem{}, 0, err
			}
			return sdk.HMACItem{Key: k.ref(), Message: msg}, v, nil
		},
		func(b sdk.CryptoBackend, batch []sdk.HMACItem) ([]sdk.HMACResult, error) { return b.HMAC(ctx, batch) },
		func(r sdk.HMACResult) ([]byte, error) { return r.MAC, r.Err })
}

func backendHMACAlgorithm(in, item *Fields) error {
	alg, err := hmacAlgorithm(in, item)
	if err != nil {
		return err
	}
	if alg != "" && alg != "sha2-256" {
		return badRequest("hmac algorithm %q is not offered by this key's backend: only sha2-256", alg)
	}
	return nil
}

// hmacOnBackend handles transit/hmac for a backend key.
func (e *Engine) hmacOnBackend(ctx context.Context, l *loaded, in *Fields) (*Response, error) {
	if l.policy.Type != keys.HMAC {
		return nil, refuseOnBackend(l, "hmac")
	}
	items, err := itemsOf(in)
	if err != nil {
		return nil, err
	}
	res, err := e.hmacBackend(ctx, l, in, items)
	if err != nil {
		return nil, err
	}
	return e.runOutcomes(in, outcomes(res, "hmac"))
}

// verifyBackendHMAC recomputes an hmac on the backend and compares in
// constant time.
func (e *Engine) verifyBackendHMAC(ctx context.Context, l *loaded, in, item *Fields, msg []byte, mac string) (bool, error) {
	if l.policy.Type != keys.HMAC {
		return false, refuseOnBackend(l, "hmac")
	}
	v, body, err := keys.ParseCiphertext(mac)
	if err != nil {
		return false, badRequest("invalid hmac: %s", strings.TrimPrefix(err.Error(), "invalid ciphertext: "))
	}
	p := l.policy
	switch {
	case v < p.MinDecryptionVersion:
		return false, badRequest("ciphertext or signature version is disallowed by policy (too old)")
	case v > p.LatestVersion || p.BackendKeys[v] == nil:
		return false, badRequest("invalid hmac: key version %d not found", v)
	}
	if err := backendHMACAlgorithm(in, item); err != nil {
		return false, err
	}
	res, err := callBackend(ctx, e, l, 1,
		func(int) (sdk.HMACItem, int, error) {
			return sdk.HMACItem{Key: p.BackendKeys[v].ref(), Message: msg}, v, nil
		},
		func(b sdk.CryptoBackend, batch []sdk.HMACItem) ([]sdk.HMACResult, error) { return b.HMAC(ctx, batch) },
		func(r sdk.HMACResult) ([]byte, error) { return r.MAC, r.Err })
	if err != nil {
		return false, err
	}
	if res[0].err != nil {
		return false, res[0].err
	}
	return hmac.Equal(res[0].out, body), nil
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
