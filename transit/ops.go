package transit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/keyraft/keyraft/keys"
)

// itemFunc performs one (batch) item of a data operation.
type itemFunc func(item *Fields) (map[string]any, error)

// run executes a data operation on the request's batch_input, or on the
// request itself when there is none. In a batch every item gets a result
// or an "error"; the status is 200 when all succeed, 400 when any item
// failed for a reason of its own (or partial_failure_response_code when
// some succeeded), and 500 when an item failed inside the server.
func (e *Engine) run(in *Fields, fn itemFunc) (*Response, error) {
	items, isBatch, err := in.Batch("batch_input")
	if err != nil {
		return nil, err
	}
	partialCode, err := in.Int("partial_failure_response_code", 0)
	if err != nil {
		return nil, err
	}
	if !isBatch {
		data, err := fn(in)
		if err != nil {
			return nil, userError(err)
		}
		return ok(data), nil
	}
	if partialCode != 0 && (partialCode < 200 || partialCode > 599) {
		return nil, badRequest("partial_failure_response_code must be an HTTP status code")
	}
	results := make([]map[string]any, len(items))
	var failed, internal int
	for i, item := range items {
		data, err := fn(item)
		if err != nil {
			err = userError(err)
			failed++
			msg := err.Error()
			if !IsUserError(err) {
				internal++
				msg = "internal error"
				e.log.Error("batch item failed", "item", i, "error", err)
			}
			data = map[string]any{"error": msg}
		}
		// Every result has its item's reference, "" included, as in Vault.
		ref, _ := item.String("reference", "")
		data["reference"] = ref
		results[i] = data
	}
	resp := ok(map[string]any{"batch_results": results})
	switch {
	case internal > 0:
		resp.Status = http.StatusInternalServerError
	case failed == len(items):
		resp.Status = http.StatusBadRequest
	case failed > 0 && partialCode != 0:
		resp.Status = partialCode
	case failed > 0:
		resp.Status = http.StatusBadRequest
	}
	return resp, nil
}

// batchOf returns the request's items (its batch, or itself), refusing
// a bad batch or partial_failure_response_code as run would, before any
// key is used.
func batchOf(in *Fields) ([]*Fields, error) {
	items, isBatch, err := in.Batch("batch_input")
	if err != nil {
		return nil, err
	}
	partialCode, err := in.Int("partial_failure_response_code", 0)
	if err != nil {
		return nil, err
	}
	if !isBatch {
		return []*Fields{in}, nil
	}
	if partialCode != 0 && (partialCode < 200 || partialCode > 599) {
		return nil, badRequest("partial_failure_response_code must be an HTTP status code")
	}
	return items, nil
}

// answer is run over items already done: fn gives item i's answer. run
// calls it once per item, in order (the batch is decoded once, so the
// items are matched by position).
func (e *Engine) answer(in *Fields, n int, fn func(i int) (map[string]any, error)) (*Response, error) {
	i := 0
	return e.run(in, func(*Fields) (map[string]any, error) {
		if i >= n {
			return nil, errors.New("transit: more items than answers")
		}
		i++
		return fn(i - 1)
	})
}

// encryptVersion picks the version to encrypt (or sign, hmac) with on c.
func encryptVersion(l *loaded, c KeyCrypto, item *Fields) (int, error) {
	v, err := item.Int("key_version", 0)
	if err != nil {
		return 0, err
	}
	p := l.policy
	if v == 0 {
		v = p.LatestVersion
	}
	switch {
	case v < 0 || v > p.LatestVersion:
		return 0, badRequest("invalid key_version %d: the latest version is %d", v, p.LatestVersion)
	case p.MinEncryptionVersion != 0 && v < p.MinEncryptionVersion:
		return 0, badRequest("key_version %d is below the key's min_encryption_version %d", v, p.MinEncryptionVersion)
	case !c.Has(v):
		return 0, badRequest("key version %d has been trimmed", v)
	}
	return v, nil
}

// decryptVersion checks the version a ciphertext, signature or hmac
// (what) names.
func decryptVersion(l *loaded, c KeyCrypto, v int, what string) error {
	p := l.policy
	switch {
	case v < p.MinDecryptionVersion:
		return badRequest("ciphertext or signature version is disallowed by policy (too old)")
	case v > p.LatestVersion || !c.Has(v):
		return badRequest("invalid %s: key version %d not found", what, v)
	}
	return nil
}

func encOptions(item *Fields) (keys.EncryptOptions, error) {
	var o keys.EncryptOptions
	var err error
	if o.Context, err = item.Base64("context"); err != nil {
		return o, err
	}
	o.AssociatedData, err = item.Base64("associated_data")
	return o, err
}

// derivable refuses a context for a crypto that cannot derive.
func derivable(c KeyCrypto, item *Fields) error {
	if _, ok := c.(Deriver); ok {
		return nil // a key that is not derived ignores the context, as in Vault
	}
	if item.Has("context") || item.Has("nonce") {
		return badRequest("context and nonce are only for derived keys; this key is not derived")
	}
	return nil
}

// Encrypt handles POST transit/encrypt/:name. A missing key is created
// first (upsert), as in Vault, with "type" and "convergent_encryption"
// from the request and derivation on when a context is given.
func (e *Engine) Encrypt(ctx context.Context, name string, in *Fields) (*Response, error) {
	// Create parameters of the upsert; an existing key ignores them.
	in.used["type"], in.used["convergent_encryption"] = true, true
	l, err := e.get(name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		// Create the key only when the request will use it: a request
		// whose every item is refused must write nothing.
		if resp, err := e.refuseAll(in, func(item *Fields) error {
			_, _, err := encryptInput(item)
			return err
		}); resp != nil || err != nil {
			return resp, err
		}
		if err := e.upsertAllowed(); err != nil {
			return nil, err
		}
		if l, err = e.upsert(ctx, name, in); err != nil {
			return nil, err
		}
	}
	if !l.policy.Type.SupportsEncryption() {
		return nil, badRequest("key type %s does not support encryption", l.policy.Type)
	}
	if err := e.allow(ctx, l.policy, OpEncrypt); err != nil {
		return nil, err
	}
	items, err := batchOf(in)
	if err != nil {
		return nil, err
	}
	batch := make([]EncryptItem, len(items))
	for i, item := range items {
		pt, o, err := encryptInput(item)
		if err != nil {
			batch[i].Err = err
			continue
		}
		batch[i] = encryptItem(l, item, pt, o)
	}
	return e.encrypted(ctx, l, in, batch)
}

// encryptItem is one item to encrypt pt with.
func encryptItem(l *loaded, item *Fields, pt []byte, o keys.EncryptOptions) EncryptItem {
	it := EncryptItem{Plaintext: pt, Options: o}
	it.Version, it.Err = encryptVersion(l, l.crypto, item)
	if it.Err == nil {
		it.Err = derivable(l.crypto, item)
	}
	return it
}

// encrypted encrypts batch in one call, counts the encryptions and
// answers with the ciphertexts (encrypt and rewrap).
func (e *Engine) encrypted(ctx context.Context, l *loaded, in *Fields, batch []EncryptItem) (*Response, error) {
	if err := l.crypto.Encrypt(ctx, batch); err != nil {
		return nil, err
	}
	e.countEncryptions(l.policy, batch)
	return e.answer(in, len(batch), func(i int) (map[string]any, error) {
		it := &batch[i]
		if it.Err != nil {
			return nil, it.Err
		}
		return map[string]any{"ciphertext": it.Ciphertext, "key_version": it.Version}, nil
	})
}

// countEncryptions counts every encryption toward its version's nonce
// budget (encrypt, rewrap and datakey all come here).
func (e *Engine) countEncryptions(p *Policy, batch []EncryptItem) {
	for i := range batch {
		if batch[i].Err == nil {
			e.countEncryption(p, batch[i].Version)
		}
	}
}

// encryptInput decodes an encrypt item's plaintext and options.
func encryptInput(item *Fields) ([]byte, keys.EncryptOptions, error) {
	if !item.Has("plaintext") {
		return nil, keys.EncryptOptions{}, badRequest("missing plaintext to encrypt")
	}
	pt, err := item.Base64("plaintext")
	if err != nil {
		return nil, keys.EncryptOptions{}, err
	}
	o, err := encOptions(item)
	return pt, o, err
}

// refuseAll checks every item of the request with check. When all fail it
// returns the answer the operation gives for them (the error, or a batch
// of errors); otherwise it returns nil, nil.
func (e *Engine) refuseAll(in *Fields, check func(item *Fields) error) (*Response, error) {
	items, isBatch, err := in.Batch("batch_input")
	if err != nil {
		return nil, err
	}
	if !isBatch {
		items = []*Fields{in}
	}
	for _, item := range items {
		if check(item) == nil {
			return nil, nil
		}
	}
	return e.run(in, func(item *Fields) (map[string]any, error) { return nil, check(item) })
}

func (e *Engine) upsert(ctx context.Context, name string, in *Fields) (*loaded, error) {
	first := in
	if items, isBatch, err := in.Batch("batch_input"); err != nil {
		return nil, err
	} else if isBatch {
		first = items[0]
	}
	params, _ := ParseFields(nil)
	for _, k := range []string{"type", "convergent_encryption"} {
		v, ok, err := in.Raw(k)
		if err != nil {
			return nil, err
		}
		if ok {
			params.raw[k] = v
		}
	}
	if first.Has("context") {
		params.Set("derived", "true")
	}
	_, err := e.update(ctx, name, func(cur *Policy) (*Policy, error) {
		if cur != nil {
			return nil, errNothingToDo
		}
		p, err := policyParams(name, params, keys.AES256GCM96)
		if err != nil {
			return nil, err
		}
		if !p.Type.SupportsEncryption() {
			return nil, badRequest("key type %s does not support encryption", p.Type)
		}
		if p.Backend, err = e.chooseBackend(ctx, p, ""); err != nil {
			return nil, err
		}
		if err := e.generateFirst(p); err != nil {
			return nil, err
		}
		return p, e.startLifecycle(ctx, p, nil)
	})
	if err != nil && err != errNothingToDo {
		return nil, err
	}
	return e.mustGet(name, "encryption key")
}

// Decrypt handles POST transit/decrypt/:name.
func (e *Engine) Decrypt(ctx context.Context, name string, in *Fields) (*Response, error) {
	l, err := e.mustGet(name, "encryption key")
	if err != nil {
		return nil, err
	}
	if !l.policy.Type.SupportsDecryption() {
		return nil, badRequest("key type %s does not support decryption", l.policy.Type)
	}
	if err := e.allow(ctx, l.policy, OpDecrypt); err != nil {
		return nil, err
	}
	batch, err := e.decrypt(ctx, l, in)
	if err != nil {
		return nil, err
	}
	return flagged(l.policy)(e.answer(in, len(batch), func(i int) (map[string]any, error) {
		it := &batch[i]
		if it.Err != nil {
			return nil, it.Err
		}
		defer clear(it.Plaintext)
		return map[string]any{"plaintext": base64.StdEncoding.EncodeToString(it.Plaintext)}, nil
	}))
}

// decrypt decrypts every item's ciphertext in one call.
func (e *Engine) decrypt(ctx context.Context, l *loaded, in *Fields) ([]DecryptItem, error) {
	items, err := batchOf(in)
	if err != nil {
		return nil, err
	}
	batch := make([]DecryptItem, len(items))
	for i, item := range items {
		batch[i], batch[i].Err = decryptItem(l, item)
	}
	if err := l.crypto.Decrypt(ctx, batch); err != nil {
		return nil, err
	}
	return batch, nil
}

func decryptItem(l *loaded, item *Fields) (DecryptItem, error) {
	s, err := item.String("ciphertext", "")
	if err != nil {
		return DecryptItem{}, err
	}
	if s == "" {
		return DecryptItem{}, badRequest("missing ciphertext to decrypt")
	}
	v, body, err := keys.ParseCiphertext(s)
	if err != nil {
		return DecryptItem{}, err
	}
	o, err := encOptions(item)
	if err == nil {
		err = derivable(l.crypto, item)
	}
	if err == nil {
		err = decryptVersion(l, l.crypto, v, "ciphertext")
	}
	return DecryptItem{Version: v, Ciphertext: body, Options: o}, err
}

// Rewrap handles POST transit/rewrap/:name: decrypt, then encrypt with the
// latest (or the given) version, without the plaintext leaving the server.
func (e *Engine) Rewrap(ctx context.Context, name string, in *Fields) (*Response, error) {
	l, err := e.mustGet(name, "encryption key")
	if err != nil {
		return nil, err
	}
	if !l.policy.Type.SupportsDecryption() {
		return nil, badRequest("key type %s does not support decryption", l.policy.Type)
	}
	if err := e.allow(ctx, l.policy, OpRewrap); err != nil {
		return nil, err
	}
	dec, err := e.decrypt(ctx, l, in)
	if err != nil {
		return nil, err
	}
	defer func() {
		for i := range dec {
			clear(dec[i].Plaintext)
		}
	}()
	items, _ := batchOf(in) // decrypt checked it
	batch := make([]EncryptItem, len(dec))
	for i, d := range dec {
		if d.Err != nil {
			batch[i].Err = d.Err
			continue
		}
		batch[i] = encryptItem(l, items[i], d.Plaintext, d.Options)
	}
	return e.encrypted(ctx, l, in, batch)
}

// DataKey handles POST transit/datakey/:plaintext|wrapped/:name: a fresh
// random key, returned encrypted under the named key (and in the clear
// for "plaintext").
func (e *Engine) DataKey(ctx context.Context, kind, name string, in *Fields) (*Response, error) {
	if kind != "plaintext" && kind != "wrapped" {
		return nil, badRequest("invalid datakey type %q: use plaintext or wrapped", kind)
	}
	l, err := e.mustGet(name, "encryption key")
	if err != nil {
		return nil, err
	}
	if !l.policy.Type.SupportsEncryption() {
		return nil, badRequest("key type %s does not support encryption", l.policy.Type)
	}
	if err := e.allow(ctx, l.policy, OpEncrypt); err != nil {
		return nil, err
	}
	bits, err := in.Int("bits", 256)
	if err != nil {
		return nil, err
	}
	if bits != 128 && bits != 256 && bits != 512 {
		return nil, badRequest("invalid bits %d: use 128, 256 or 512", bits)
	}
	o, err := encOptions(in)
	if err != nil {
		return nil, err
	}
	dk := make([]byte, bits/8)
	if _, err := rand.Read(dk); err != nil {
		return nil, err
	}
	defer clear(dk)
	batch := []EncryptItem{encryptItem(l, in, dk, o)}
	if batch[0].Err != nil {
		return nil, userError(batch[0].Err)
	}
	if err := l.crypto.Encrypt(ctx, batch); err != nil {
		return nil, err
	}
	if batch[0].Err != nil {
		return nil, userError(batch[0].Err)
	}
	e.countEncryptions(l.policy, batch)
	data := map[string]any{"ciphertext": batch[0].Ciphertext, "key_version": batch[0].Version}
	if kind == "plaintext" {
		data["plaintext"] = base64.StdEncoding.EncodeToString(dk)
	}
	return ok(data), nil
}

func signOptions(in, item *Fields) (keys.SignOptions, error) {
	var o keys.SignOptions
	var err error
	get := func(name string) (string, error) {
		if item.Has(name) {
			return item.String(name, "")
		}
		return in.String(name, "")
	}
	if o.HashAlgorithm, err = get("hash_algorithm"); err != nil {
		return o, err
	}
	if o.HashAlgorithm == "" {
		if o.HashAlgorithm, err = get("algorithm"); err != nil { // older name
			return o, err
		}
	}
	if o.SignatureAlgorithm, err = get("signature_algorithm"); err != nil {
		return o, err
	}
	if o.MarshalingAlgorithm, err = get("marshaling_algorithm"); err != nil {
		return o, err
	}
	if o.SaltLength, err = get("salt_length"); err != nil {
		return o, err
	}
	pf := in
	if item.Has("prehashed") {
		pf = item
	}
	if o.Prehashed, err = pf.Bool("prehashed", false); err != nil {
		return o, err
	}
	o.Context, err = item.Base64("context")
	return o, err
}

// itemSignOptions are item's sign options for c, or, for a crypto that
// takes none, the refusal of any that mean something.
func itemSignOptions(c KeyCrypto, in, item *Fields) (keys.SignOptions, error) {
	if _, ok := c.(OptionSigner); ok {
		return signOptions(in, item)
	}
	return keys.SignOptions{}, refuseSignOptions(item)
}

// refuseSignOptions refuses the options that mean nothing for a key that
// signs its input as is (ed25519 on a backend), rather than ignoring them.
func refuseSignOptions(f *Fields) error {
	// Pure Ed25519 ignores these, as Vault does (edPrehashWarning).
	if _, err := f.Bool("prehashed", false); err != nil {
		return err
	}
	for _, name := range []string{"hash_algorithm", "algorithm"} {
		if _, err := f.String(name, ""); err != nil {
			return err
		}
	}
	for _, name := range []string{"context", "salt_length"} {
		if f.Has(name) {
			return badRequest("%s is not supported for this key", name)
		}
	}
	return nil
}

func input(item *Fields) ([]byte, error) {
	if !item.Has("input") {
		return nil, badRequest("missing input")
	}
	return item.Base64("input")
}

// Sign handles POST transit/sign/:name(/:hash_algorithm).
func (e *Engine) Sign(ctx context.Context, name string, in *Fields) (*Response, error) {
	l, err := e.mustGet(name, "signing key")
	if err != nil {
		return nil, err
	}
	if !l.policy.Type.SupportsSigning() {
		return nil, badRequest("key type %s does not support signing", l.policy.Type)
	}
	if err := e.allow(ctx, l.policy, OpSign); err != nil {
		return nil, err
	}
	c := l.crypto
	if _, ok := c.(OptionSigner); !ok {
		if err := refuseSignOptions(in); err != nil {
			return nil, err
		}
	}
	items, err := batchOf(in)
	if err != nil {
		return nil, err
	}
	batch := make([]SignItem, len(items))
	for i, item := range items {
		it := &batch[i]
		if it.Message, it.Err = input(item); it.Err != nil {
			continue
		}
		if it.Options, it.Err = itemSignOptions(c, in, item); it.Err != nil {
			continue
		}
		it.Version, it.Err = encryptVersion(l, c, in)
	}
	if err := c.Sign(ctx, batch); err != nil {
		return nil, err
	}
	d, derives := c.(Deriver)
	resp, err := e.answer(in, len(batch), func(i int) (map[string]any, error) {
		it := &batch[i]
		if it.Err != nil {
			return nil, it.Err
		}
		data := map[string]any{"signature": it.Signature, "key_version": it.Version}
		if derives && l.policy.Derived {
			if pub, err := d.DerivedPublicKey(it.Version, it.Options.Context); err == nil {
				data["public_key"] = pub
			}
		}
		return data, nil
	})
	if resp != nil && l.policy.Type == keys.Ed25519 && prehashedAsked(in, items) {
		resp.Warnings = append(resp.Warnings, "prehashed has no effect on an ed25519 key: it signs the input itself (pure Ed25519)")
	}
	return resp, err
}

// prehashedAsked reports whether the request or one of its items set
// prehashed.
func prehashedAsked(in *Fields, items []*Fields) bool {
	for _, f := range append([]*Fields{in}, items...) {
		if v, _ := f.Bool("prehashed", false); v {
			return true
		}
	}
	return false
}

// errOtherKind marks an item of a verify batch that is for the other
// call (a signature, not an hmac, or the reverse).
var errOtherKind = errors.New("transit: not this call's item")

// Verify handles POST transit/verify/:name(/:hash_algorithm) for both
// signatures and HMACs.
func (e *Engine) Verify(ctx context.Context, name string, in *Fields) (*Response, error) {
	l, err := e.mustGet(name, "key")
	if err != nil {
		return nil, err
	}
	if err := e.allow(ctx, l.policy, OpVerify); err != nil {
		return nil, err
	}
	items, err := batchOf(in)
	if err != nil {
		return nil, err
	}
	c := l.crypto
	hc, hcErr := hmacCrypto(l)
	sigs, macs := make([]VerifyItem, len(items)), make([]HMACItem, len(items))
	wants := make([]string, len(items))
	var anySig, anyMAC bool
	for i, item := range items {
		sigs[i].Err, macs[i].Err = errOtherKind, errOtherKind
		err := func() error {
			msg, err := input(item)
			if err != nil {
				return err
			}
			sig, err := item.String("signature", "")
			if err != nil {
				return err
			}
			mac, err := item.String("hmac", "")
			if err != nil {
				return err
			}
			switch {
			case sig != "" && mac != "":
				return badRequest("provide either signature or hmac, not both")
			case sig != "":
				if !l.policy.Type.SupportsSigning() {
					return badRequest("key type %s does not support signature verification", l.policy.Type)
				}
				if _, ok := c.(OptionSigner); !ok {
					if err := refuseSignOptions(item); err != nil {
						return err
					}
				}
				v, body, err := keys.ParseSignature(sig)
				if err != nil {
					return err
				}
				if err := decryptVersion(l, c, v, "signature"); err != nil {
					return err
				}
				o, err := itemSignOptions(c, in, item)
				if err != nil {
					return err
				}
				sigs[i], anySig = VerifyItem{Version: v, Message: msg, Signature: body, Options: o}, true
			case mac != "":
				if hcErr != nil {
					return hcErr
				}
				v, _, err := keys.ParseCiphertext(mac)
				if err != nil {
					return badRequest("invalid hmac: %s", strings.TrimPrefix(err.Error(), "invalid ciphertext: "))
				}
				if err := decryptVersion(l, hc, v, "hmac"); err != nil {
					return err
				}
				alg, err := itemHMACAlgorithm(hc, in, item)
				if err != nil {
					return err
				}
				macs[i], wants[i], anyMAC = HMACItem{Version: v, Message: msg, Algorithm: alg}, mac, true
			default:
				return badRequest("missing signature or hmac to verify")
			}
			return nil
		}()
		if err != nil {
			sigs[i].Err = err
		}
	}
	if anySig {
		if err := c.Verify(ctx, sigs); err != nil {
			return nil, err
		}
	}
	if anyMAC {
		if err := hc.HMAC(ctx, macs); err != nil {
			return nil, err
		}
	}
	return flagged(l.policy)(e.answer(in, len(items), func(i int) (map[string]any, error) {
		s, m := &sigs[i], &macs[i]
		switch {
		case s.Err == nil:
			return map[string]any{"valid": s.Valid}, nil
		case m.Err == nil:
			// The given hmac parsed strictly, so it is the canonical
			// string of its bytes: comparing strings compares MACs.
			return map[string]any{"valid": hmac.Equal([]byte(m.MAC), []byte(wants[i]))}, nil
		case s.Err != errOtherKind:
			return nil, s.Err
		default:
			return nil, m.Err
		}
	}))
}

func hmacAlgorithm(in, item *Fields) (string, error) {
	for _, f := range []*Fields{item, in} {
		for _, name := range []string{"algorithm", "hash_algorithm"} {
			if f.Has(name) {
				return f.String(name, "")
			}
		}
	}
	return "", nil
}

// itemHMACAlgorithm is item's hmac algorithm, refused when c makes only
// HMAC-SHA256.
func itemHMACAlgorithm(c KeyCrypto, in, item *Fields) (string, error) {
	alg, err := hmacAlgorithm(in, item)
	if err != nil {
		return "", err
	}
	if _, ok := c.(HMACAlgorithmer); !ok && alg != "" && alg != "sha2-256" {
		return "", badRequest("hmac algorithm %q is not offered by this key's backend: only sha2-256", alg)
	}
	return alg, nil
}

// hmacCrypto is the crypto that makes l's HMACs: the key itself for type
// hmac, else its separate HMAC keys when it has them.
func hmacCrypto(l *loaded) (KeyCrypto, error) {
	c := l.crypto
	if l.policy.Type == keys.HMAC {
		return c, nil
	}
	if s, ok := c.(SeparateHMAC); ok {
		if hc, ok := s.HMACKeys(); ok {
			return hc, nil
		}
	}
	return nil, badRequest("key %q lives on crypto backend %q, which does not offer hmac for it", l.policy.Name, c.Name())
}

// HMAC handles POST transit/hmac/:name(/:algorithm).
func (e *Engine) HMAC(ctx context.Context, name string, in *Fields) (*Response, error) {
	l, err := e.mustGet(name, "HMAC key")
	if err != nil {
		return nil, err
	}
	if err := e.allow(ctx, l.policy, OpHMAC); err != nil {
		return nil, err
	}
	hc, err := hmacCrypto(l)
	if err != nil {
		return nil, err
	}
	items, err := batchOf(in)
	if err != nil {
		return nil, err
	}
	batch := make([]HMACItem, len(items))
	for i, item := range items {
		it := &batch[i]
		if it.Message, it.Err = input(item); it.Err != nil {
			continue
		}
		if it.Algorithm, it.Err = itemHMACAlgorithm(hc, in, item); it.Err != nil {
			continue
		}
		// The item's key_version, else the request's.
		vf := in
		if item.Has("key_version") {
			vf = item
		}
		it.Version, it.Err = encryptVersion(l, hc, vf)
	}
	if err := hc.HMAC(ctx, batch); err != nil {
		return nil, err
	}
	return e.answer(in, len(batch), func(i int) (map[string]any, error) {
		it := &batch[i]
		if it.Err != nil {
			return nil, it.Err
		}
		return map[string]any{"hmac": it.MAC}, nil
	})
}

// MaxRandomBytes caps transit/random.
const MaxRandomBytes = 128 * 1024

// Random handles POST transit/random(/:source)(/:bytes).
func Random(in *Fields) (*Response, error) {
	n, err := in.Int("bytes", 32)
	if err != nil {
		return nil, err
	}
	if n < 1 || n > MaxRandomBytes {
		return nil, badRequest("bytes must be between 1 and %d", MaxRandomBytes)
	}
	source, err := in.String("source", "platform")
	if err != nil {
		return nil, err
	}
	if source != "platform" && source != "seal" && source != "all" {
		return nil, badRequest("invalid source %q: use platform, seal or all", source)
	}
	format, err := in.String("format", "base64")
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	s, err := encode(format, b)
	if err != nil {
		return nil, err
	}
	return ok(map[string]any{"random_bytes": s}), nil
}

// Hash handles POST transit/hash(/:algorithm).
func Hash(in *Fields) (*Response, error) {
	msg, err := input(in)
	if err != nil {
		return nil, err
	}
	alg, err := in.String("algorithm", "sha2-256")
	if err != nil {
		return nil, err
	}
	format, err := in.String("format", "hex")
	if err != nil {
		return nil, err
	}
	sum, err := keys.Hash(alg, msg)
	if err != nil {
		return nil, userError(err)
	}
	s, err := encode(format, sum)
	if err != nil {
		return nil, err
	}
	return ok(map[string]any{"sum": s}), nil
}

func encode(format string, b []byte) (string, error) {
	switch format {
	case "base64":
		return base64.StdEncoding.EncodeToString(b), nil
	case "hex":
		return hex.EncodeToString(b), nil
	}
	return "", badRequest("invalid format %q: use base64 or hex", format)
}
