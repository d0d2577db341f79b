package transit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
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
		if ref, rerr := item.String("reference", ""); rerr == nil && ref != "" {
			data["reference"] = ref
		}
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

// encryptVersion picks the version to encrypt (or sign, hmac) with.
func encryptVersion(l *loaded, item *Fields) (*keys.Handle, error) {
	v, err := item.Int("key_version", 0)
	if err != nil {
		return nil, err
	}
	p := l.policy
	if v == 0 {
		v = p.LatestVersion
	}
	switch {
	case v < 0 || v > p.LatestVersion:
		return nil, badRequest("invalid key_version %d: the latest version is %d", v, p.LatestVersion)
	case p.MinEncryptionVersion != 0 && v < p.MinEncryptionVersion:
		return nil, badRequest("key_version %d is below the key's min_encryption_version %d", v, p.MinEncryptionVersion)
	case l.handles[v] == nil:
		return nil, badRequest("key version %d has been trimmed", v)
	}
	return l.handles[v], nil
}

// decryptVersion picks the version a ciphertext, signature or hmac (what)
// names.
func decryptVersion(l *loaded, v int, what string) (*keys.Handle, error) {
	p := l.policy
	switch {
	case v < p.MinDecryptionVersion:
		return nil, badRequest("ciphertext or signature version is disallowed by policy (too old)")
	case v > p.LatestVersion || l.handles[v] == nil:
		return nil, badRequest("invalid %s: key version %d not found", what, v)
	}
	return l.handles[v], nil
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
	if l.policy.Backend != "" {
		return e.encryptBackend(ctx, l, in)
	}
	return e.run(in, func(item *Fields) (map[string]any, error) {
		pt, o, err := encryptInput(item)
		if err != nil {
			return nil, err
		}
		h, err := encryptVersion(l, item)
		if err != nil {
			return nil, err
		}
		ct, err := h.Encrypt(pt, o)
		if err != nil {
			return nil, err
		}
		e.countEncryption(l.policy, h.Version())
		return map[string]any{"ciphertext": ct, "key_version": h.Version()}, nil
	})
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
	if l.policy.Backend != "" {
		return flagged(l.policy)(e.decryptBackend(ctx, l, in))
	}
	return flagged(l.policy)(e.run(in, func(item *Fields) (map[string]any, error) {
		pt, _, err := decryptItem(l, item)
		if err != nil {
			return nil, err
		}
		defer clear(pt)
		return map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)}, nil
	}))
}

func decryptItem(l *loaded, item *Fields) ([]byte, keys.EncryptOptions, error) {
	s, err := item.String("ciphertext", "")
	if err != nil {
		return nil, keys.EncryptOptions{}, err
	}
	if s == "" {
		return nil, keys.EncryptOptions{}, badRequest("missing ciphertext to decrypt")
	}
	v, body, err := keys.ParseCiphertext(s)
	if err != nil {
		return nil, keys.EncryptOptions{}, err
	}
	o, err := encOptions(item)
	if err != nil {
		return nil, o, err
	}
	h, err := decryptVersion(l, v, "ciphertext")
	if err != nil {
		return nil, o, err
	}
	pt, err := h.Decrypt(body, o)
	return pt, o, err
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
	if l.policy.Backend != "" {
		return e.rewrapBackend(ctx, l, in)
	}
	return e.run(in, func(item *Fields) (map[string]any, error) {
		pt, o, err := decryptItem(l, item)
		if err != nil {
			return nil, err
		}
		defer clear(pt)
		h, err := encryptVersion(l, item)
		if err != nil {
			return nil, err
		}
		ct, err := h.Encrypt(pt, o)
		if err != nil {
			return nil, err
		}
		e.countEncryption(l.policy, h.Version())
		return map[string]any{"ciphertext": ct, "key_version": h.Version()}, nil
	})
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
	if l.policy.Backend != "" {
		return e.dataKeyBackend(ctx, l, kind, bits, in)
	}
	o, err := encOptions(in)
	if err != nil {
		return nil, err
	}
	h, err := encryptVersion(l, in)
	if err != nil {
		return nil, err
	}
	dk := make([]byte, bits/8)
	if _, err := rand.Read(dk); err != nil {
		return nil, err
	}
	defer clear(dk)
	ct, err := h.Encrypt(dk, o)
	if err != nil {
		return nil, userError(err)
	}
	e.countEncryption(l.policy, h.Version())
	data := map[string]any{"ciphertext": ct, "key_version": h.Version()}
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
	if l.policy.Backend != "" {
		return e.signBackend(ctx, l, in)
	}
	return e.run(in, func(item *Fields) (map[string]any, error) {
		msg, err := input(item)
		if err != nil {
			return nil, err
		}
		o, err := signOptions(in, item)
		if err != nil {
			return nil, err
		}
		h, err := encryptVersion(l, in)
		if err != nil {
			return nil, err
		}
		sig, err := h.Sign(msg, o)
		if err != nil {
			return nil, err
		}
		data := map[string]any{"signature": sig, "key_version": h.Version()}
		if l.policy.Derived {
			if pub, err := h.PublicKey(o.Context); err == nil {
				data["public_key"] = pub
			}
		}
		return data, nil
	})
}

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
	return flagged(l.policy)(e.run(in, func(item *Fields) (map[string]any, error) {
		msg, err := input(item)
		if err != nil {
			return nil, err
		}
		sig, err := item.String("signature", "")
		if err != nil {
			return nil, err
		}
		mac, err := item.String("hmac", "")
		if err != nil {
			return nil, err
		}
		var valid bool
		switch {
		case sig != "" && mac != "":
			return nil, badRequest("provide either signature or hmac, not both")
		case sig != "":
			if !l.policy.Type.SupportsSigning() {
				return nil, badRequest("key type %s does not support signature verification", l.policy.Type)
			}
			if l.policy.Backend != "" {
				if err := refuseSignOptions(item); err != nil {
					return nil, err
				}
				if valid, err = verifyBackendSignature(l, msg, sig); err != nil {
					return nil, err
				}
				break
			}
			v, body, err := keys.ParseSignature(sig)
			if err != nil {
				return nil, err
			}
			h, err := decryptVersion(l, v, "signature")
			if err != nil {
				return nil, err
			}
			o, err := signOptions(in, item)
			if err != nil {
				return nil, err
			}
			if valid, err = h.Verify(msg, body, o); err != nil {
				return nil, err
			}
		case mac != "" && l.policy.Backend != "" && (l.policy.Type == keys.HMAC || len(l.handles) == 0):
			if valid, err = e.verifyBackendHMAC(ctx, l, in, item, msg, mac); err != nil {
				return nil, err
			}
		case mac != "":
			v, body, err := keys.ParseCiphertext(mac)
			if err != nil {
				return nil, badRequest("invalid hmac: %s", strings.TrimPrefix(err.Error(), "invalid ciphertext: "))
			}
			h, err := decryptVersion(l, v, "hmac")
			if err != nil {
				return nil, err
			}
			alg, err := hmacAlgorithm(in, item)
			if err != nil {
				return nil, err
			}
			if valid, err = h.VerifyHMAC(msg, body, alg); err != nil {
				return nil, err
			}
		default:
			return nil, badRequest("missing signature or hmac to verify")
		}
		return map[string]any{"valid": valid}, nil
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

// HMAC handles POST transit/hmac/:name(/:algorithm).
func (e *Engine) HMAC(ctx context.Context, name string, in *Fields) (*Response, error) {
	l, err := e.mustGet(name, "HMAC key")
	if err != nil {
		return nil, err
	}
	if err := e.allow(ctx, l.policy, OpHMAC); err != nil {
		return nil, err
	}
	if l.policy.Backend != "" && (l.policy.Type == keys.HMAC || len(l.handles) == 0) {
		return e.hmacOnBackend(ctx, l, in)
	}
	return e.run(in, func(item *Fields) (map[string]any, error) {
		msg, err := input(item)
		if err != nil {
			return nil, err
		}
		alg, err := hmacAlgorithm(in, item)
		if err != nil {
			return nil, err
		}
		h, err := encryptVersion(l, in)
		if err != nil {
			return nil, err
		}
		mac, err := h.HMAC(msg, alg)
		if err != nil {
			return nil, err
		}
		return map[string]any{"hmac": mac}, nil
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
