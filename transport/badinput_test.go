package transport

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// state is what a failed request must leave untouched: the Raft log and
// every key's settings.
type state struct {
	committed uint64
	keys      map[string]map[string]any
}

func (h *harness) state(names ...string) state {
	h.t.Helper()
	c, _ := h.node.RaftIndexes()
	s := state{committed: c, keys: map[string]map[string]any{}}
	for _, n := range names {
		r := h.do("GET", "transit/keys/"+n, nil)
		if r.status == 200 {
			s.keys[n] = r.data()
		} else {
			s.keys[n] = nil
		}
	}
	return s
}

// TestBadInput sends every kind of bad request the API must refuse and
// checks the exact status, a single readable reason in Vault's error
// envelope, that nothing was written, that the refusal was audited, and
// that the server still serves.
func TestBadInput(t *testing.T) {
	h := newHarness(t, harnessOpts{maxRequestSize: 64 << 10})
	h.createKey("aes", nil)
	h.createKey("aes2", nil)
	h.createKey("ed", map[string]any{"type": "ed25519"})
	h.createKey("ec", map[string]any{"type": "ecdsa-p256"})
	h.createKey("hm", map[string]any{"type": "hmac"})
	h.createKey("der", map[string]any{"derived": true})
	h.createKey("exp", map[string]any{"exportable": true})
	h.createKey("rot", nil)
	ctOld := h.must(200, "POST", "transit/encrypt/rot", map[string]any{"plaintext": b64("old")}).str("ciphertext")
	h.must(200, "POST", "transit/keys/rot/rotate", nil)
	h.must(200, "POST", "transit/keys/rot/rotate", nil)
	h.must(200, "POST", "transit/keys/rot/config", map[string]any{"min_decryption_version": 2, "min_encryption_version": 3})

	ct := h.must(200, "POST", "transit/encrypt/aes", map[string]any{"plaintext": b64("hello")}).str("ciphertext")
	ct2 := h.must(200, "POST", "transit/encrypt/aes2", map[string]any{"plaintext": b64("hello")}).str("ciphertext")
	_, body, _ := strings.Cut(strings.TrimPrefix(ct, "vault:"), ":")
	raw, _ := base64.StdEncoding.DecodeString(body)
	raw[len(raw)-1] ^= 1
	tampered := "vault:v1:" + base64.StdEncoding.EncodeToString(raw)
	sig := h.must(200, "POST", "transit/sign/ed", map[string]any{"input": b64("m")}).str("signature")
	names := []string{"aes", "aes2", "ed", "ec", "hm", "der", "exp", "rot", "new", "nokey"}

	type tc struct {
		name   string
		method string
		path   string
		body   any
		hdr    map[string]string // nil: the root token
		status int
		msg    string // the whole message, or its start when it ends in "…"
	}
	big := `{"plaintext":"` + strings.Repeat("A", 70<<10) + `"}`
	cases := []tc{
		// Bodies that are not a JSON object.
		{"truncated JSON", "POST", "transit/encrypt/aes", `{"plaintext":`, nil, 400, "failed to parse JSON input: unexpected EOF"},
		{"syntax error", "POST", "transit/encrypt/aes", `{"plaintext" "x"}`, nil, 400, "failed to parse JSON input: invalid character after object key (at byte 14)"},
		{"control byte in a string", "POST", "transit/encrypt/aes", "{\"plaintext\":\"c2Vj\x01\"}", nil, 400, "failed to parse JSON input: invalid character in string literal (at byte 19)"},
		{"array body", "POST", "transit/encrypt/aes", `[1,2]`, nil, 400, "failed to parse JSON input: request body must be a JSON object"},
		{"string body", "POST", "transit/encrypt/aes", `"plaintext"`, nil, 400, "failed to parse JSON input: request body must be a JSON object"},
		{"number body", "POST", "transit/keys/new", `42`, nil, 400, "failed to parse JSON input: request body must be a JSON object"},
		{"two objects", "POST", "transit/encrypt/aes", `{"plaintext":"aGk="} {}`, nil, 400, "failed to parse JSON input: data after the JSON object"},
		{"trailing bracket", "POST", "transit/encrypt/aes", `{"plaintext":"aGk="} ]`, nil, 400, "failed to parse JSON input: data after the JSON object"},
		{"object field", "POST", "transit/encrypt/aes", `{"plaintext":{"a":1}}`, nil, 400, `field "plaintext" must be a single value, not an object or array`},

		// Base64 fields.
		{"plaintext not base64", "POST", "transit/encrypt/aes", map[string]any{"plaintext": "not base64!"}, nil, 400, `field "plaintext" must be base64-encoded…`},
		{"context not base64", "POST", "transit/encrypt/der", map[string]any{"plaintext": b64("x"), "context": "%%%"}, nil, 400, `field "context" must be base64-encoded…`},
		{"associated_data not base64", "POST", "transit/encrypt/aes", map[string]any{"plaintext": b64("x"), "associated_data": "@"}, nil, 400, `field "associated_data" must be base64-encoded…`},
		{"sign input not base64", "POST", "transit/sign/ed", map[string]any{"input": "***"}, nil, 400, `field "input" must be base64-encoded…`},
		{"hmac input not base64", "POST", "transit/hmac/hm", map[string]any{"input": "***"}, nil, 400, `field "input" must be base64-encoded…`},
		{"hash input not base64", "POST", "transit/hash", map[string]any{"input": "***"}, nil, 400, `field "input" must be base64-encoded…`},
		{"missing plaintext", "POST", "transit/encrypt/aes", map[string]any{}, nil, 400, "missing plaintext to encrypt"},
		{"missing ciphertext", "POST", "transit/decrypt/aes", map[string]any{}, nil, 400, "missing ciphertext to decrypt"},
		{"missing input", "POST", "transit/sign/ed", map[string]any{}, nil, 400, "missing input"},
		{"missing context on derived", "POST", "transit/encrypt/der", map[string]any{"plaintext": b64("x")}, nil, 400, "context is required for a derived key"},

		// Unknown keys.
		{"decrypt unknown key", "POST", "transit/decrypt/nokey", map[string]any{"ciphertext": ct}, nil, 400, "encryption key not found"},
		{"rewrap unknown key", "POST", "transit/rewrap/nokey", map[string]any{"ciphertext": ct}, nil, 400, "encryption key not found"},
		{"datakey unknown key", "POST", "transit/datakey/plaintext/nokey", nil, nil, 400, "encryption key not found"},
		{"sign unknown key", "POST", "transit/sign/nokey", map[string]any{"input": b64("m")}, nil, 400, "signing key not found"},
		{"verify unknown key", "POST", "transit/verify/nokey", map[string]any{"input": b64("m"), "signature": sig}, nil, 400, "key not found"},
		{"hmac unknown key", "POST", "transit/hmac/nokey", map[string]any{"input": b64("m")}, nil, 400, "HMAC key not found"},
		{"read unknown key", "GET", "transit/keys/nokey", nil, nil, 404, `key "nokey" not found`},
		{"rotate unknown key", "POST", "transit/keys/nokey/rotate", nil, nil, 400, `key "nokey" not found`},
		{"config unknown key", "POST", "transit/keys/nokey/config", map[string]any{"deletion_allowed": true}, nil, 400, `key "nokey" not found`},
		{"trim unknown key", "POST", "transit/keys/nokey/trim", map[string]any{"min_available_version": 1}, nil, 400, `key "nokey" not found`},
		{"delete unknown key", "DELETE", "transit/keys/nokey", nil, nil, 400, `key "nokey" not found`},
		{"export unknown key", "GET", "transit/export/encryption-key/nokey", nil, nil, 404, `key "nokey" not found`},

		// Wrong key type for the operation.
		{"encrypt with ed25519", "POST", "transit/encrypt/ed", map[string]any{"plaintext": b64("x")}, nil, 400, "key type ed25519 does not support encryption"},
		{"encrypt with hmac key", "POST", "transit/encrypt/hm", map[string]any{"plaintext": b64("x")}, nil, 400, "key type hmac does not support encryption"},
		{"decrypt with ed25519", "POST", "transit/decrypt/ed", map[string]any{"ciphertext": ct}, nil, 400, "key type ed25519 does not support decryption"},
		{"rewrap with ed25519", "POST", "transit/rewrap/ed", map[string]any{"ciphertext": ct}, nil, 400, "key type ed25519 does not support decryption"},
		{"datakey with ed25519", "POST", "transit/datakey/wrapped/ed", nil, nil, 400, "key type ed25519 does not support encryption"},
		{"sign with aes", "POST", "transit/sign/aes", map[string]any{"input": b64("m")}, nil, 400, "key type aes256-gcm96 does not support signing"},
		{"sign with hmac key", "POST", "transit/sign/hm", map[string]any{"input": b64("m")}, nil, 400, "key type hmac does not support signing"},
		{"verify signature with aes", "POST", "transit/verify/aes", map[string]any{"input": b64("m"), "signature": sig}, nil, 400, "key type aes256-gcm96 does not support signature verification"},
		{"verify with both", "POST", "transit/verify/hm", map[string]any{"input": b64("m"), "signature": sig, "hmac": sig}, nil, 400, "provide either signature or hmac, not both"},
		{"verify with neither", "POST", "transit/verify/hm", map[string]any{"input": b64("m")}, nil, 400, "missing signature or hmac to verify"},
		{"verify hmac malformed", "POST", "transit/verify/hm", map[string]any{"input": b64("m"), "hmac": "hmac:xyz"}, nil, 400, "invalid hmac: missing vault: prefix"},
		{"verify signature malformed", "POST", "transit/verify/ed", map[string]any{"input": b64("m"), "signature": "vault:v1:%%"}, nil, 400, "invalid signature: invalid base64"},
		{"verify signature of a version not there", "POST", "transit/verify/ed", map[string]any{"input": b64("m"), "signature": "vault:v7:" + b64("x")}, nil, 400, "invalid signature: key version 7 not found"},

		// Ciphertexts that are not this key's.
		{"ciphertext of another key", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": ct2}, nil, 400, "invalid ciphertext: message authentication failed"},
		{"ciphertext of a newer version", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": strings.Replace(ct, "vault:v1:", "vault:v9:", 1)}, nil, 400, "invalid ciphertext: key version 9 not found"},
		{"ciphertext below min_decryption_version", "POST", "transit/decrypt/rot", map[string]any{"ciphertext": ctOld}, nil, 400, "ciphertext or signature version is disallowed by policy (too old)"},
		{"tampered ciphertext", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": tampered}, nil, 400, "invalid ciphertext: message authentication failed"},
		{"wrong associated data", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": ct, "associated_data": b64("ad")}, nil, 400, "invalid ciphertext: message authentication failed"},
		{"truncated ciphertext", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": "vault:v1:" + b64("short")}, nil, 400, "invalid ciphertext: ciphertext too short"},
		{"no prefix", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": body}, nil, 400, "invalid ciphertext: missing vault: prefix"},
		{"bad version letter", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": "vault:x1:" + body}, nil, 400, "invalid ciphertext: invalid version"},
		{"version zero", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": "vault:v0:" + body}, nil, 400, "invalid ciphertext: invalid version"},
		{"negative version", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": "vault:v-1:" + body}, nil, 400, "invalid ciphertext: invalid version"},
		{"no version", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": "vault:" + body}, nil, 400, "invalid ciphertext: invalid version"},
		{"empty body", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": "vault:v1:"}, nil, 400, "invalid ciphertext: empty body"},
		{"body not base64", "POST", "transit/decrypt/aes", map[string]any{"ciphertext": "vault:v1:!!!!"}, nil, 400, "invalid ciphertext: invalid base64"},

		// Versions.
		{"encrypt key_version too new", "POST", "transit/encrypt/aes", map[string]any{"plaintext": b64("x"), "key_version": 5}, nil, 400, "invalid key_version 5: the latest version is 1"},
		{"encrypt key_version not a number", "POST", "transit/encrypt/aes", map[string]any{"plaintext": b64("x"), "key_version": "two"}, nil, 400, `field "key_version" must be an integer, got "two"`},

		// Size, tokens, methods, paths.
		{"oversized body", "POST", "transit/encrypt/aes", big, nil, 413, "request body too large: the limit is 65536 bytes"},
		{"missing token", "POST", "transit/encrypt/aes", map[string]any{"plaintext": b64("x")}, map[string]string{}, 403, "permission denied: missing client token (set X-Vault-Token)"},
		{"unknown token", "POST", "transit/encrypt/aes", map[string]any{"plaintext": b64("x")}, map[string]string{"X-Vault-Token": "kr.nope"}, 403, "permission denied: invalid token"},
		{"unknown bearer token", "POST", "transit/encrypt/aes", map[string]any{"plaintext": b64("x")}, map[string]string{"Authorization": "Bearer kr.nope"}, 403, "permission denied: invalid token"},
		{"unknown token on lookup-self", "GET", "auth/token/lookup-self", nil, map[string]string{"X-Vault-Token": "kr.nope"}, 403, "permission denied: invalid token"},
		{"unknown token on sys/seal", "POST", "sys/seal", nil, map[string]string{"X-Vault-Token": "kr.nope"}, 403, "permission denied: invalid token"},
		{"PATCH", "PATCH", "transit/encrypt/aes", map[string]any{}, nil, 405, "unsupported method PATCH"},
		{"GET on encrypt", "GET", "transit/encrypt/aes", nil, nil, 405, "unsupported operation"},
		{"DELETE on keys list", "DELETE", "transit/keys", nil, nil, 405, "unsupported operation"},
		{"GET on rotate", "GET", "transit/keys/aes/rotate", nil, nil, 405, "unsupported operation"},
		{"POST on seal-status", "POST", "sys/seal-status", nil, nil, 405, "unsupported operation"},
		{"unknown top path", "GET", "nothing/here", nil, nil, 404, "unsupported path"},
		{"unknown sys path", "GET", "sys/nothing-here", nil, nil, 404, "unsupported path"},
		{"unknown transit path", "POST", "transit/bogus/aes", map[string]any{}, nil, 404, "unsupported path"},
		{"unknown key sub-path", "POST", "transit/keys/aes/bogus", map[string]any{}, nil, 404, "unsupported path"},
		{"too many segments", "POST", "transit/encrypt/aes/extra", map[string]any{}, nil, 404, "unsupported path: use transit/encrypt/:name"},
		{"datakey without a key", "POST", "transit/datakey/plaintext", nil, nil, 404, "unsupported path: use transit/datakey/:type/:name"},
		{"bare transit", "GET", "transit", nil, nil, 404, "unsupported path"},

		// Key names and create parameters.
		{"name with space", "POST", "transit/keys/bad%20name", nil, nil, 400, `invalid key name "bad name": use 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit`},
		{"name starting with dash", "POST", "transit/encrypt/-x", map[string]any{"plaintext": b64("x")}, nil, 400, `invalid key name "-x"…`},
		{"name too long", "POST", "transit/keys/" + strings.Repeat("k", 129), nil, nil, 400, `invalid key name "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk…"…`},
		{"unknown type", "POST", "transit/keys/new", map[string]any{"type": "des"}, nil, 400, `invalid key type "des": valid types are aes128-gcm96…`},
		{"derived rsa", "POST", "transit/keys/new", map[string]any{"type": "rsa-2048", "derived": true}, nil, 400, "key derivation is not supported for key type rsa-2048"},
		{"convergent without derived", "POST", "transit/keys/new", map[string]any{"convergent_encryption": true}, nil, 400, "convergent encryption requires derivation to be enabled"},
		{"key_size on aes", "POST", "transit/keys/new", map[string]any{"key_size": 32}, nil, 400, "key_size is only valid for hmac keys"},
		{"hmac key_size too small", "POST", "transit/keys/new", map[string]any{"type": "hmac", "key_size": 8}, nil, 400, "invalid key_size 8: must be between 16 and 512 bytes"},
		{"bad bool", "POST", "transit/keys/new", map[string]any{"exportable": "maybe"}, nil, 400, `field "exportable" must be a boolean, got "maybe"`},
		{"short rotate period", "POST", "transit/keys/new", map[string]any{"auto_rotate_period": "10m"}, nil, 400, "auto_rotate_period must be 0 to disable, or at least an hour"},
		{"bad rotate period", "POST", "transit/keys/new", map[string]any{"auto_rotate_period": "soon"}, nil, 400, `field "auto_rotate_period" must be a duration such as "24h" or a number of seconds, got "soon"`},
		{"bad params on existing key", "POST", "transit/keys/aes", map[string]any{"type": "des"}, nil, 400, `invalid key type "des"…`},

		// Upsert must not create a key for a request that fails.
		{"upsert bad plaintext", "POST", "transit/encrypt/new", map[string]any{"plaintext": "!"}, nil, 400, `field "plaintext" must be base64-encoded…`},
		{"upsert missing plaintext", "POST", "transit/encrypt/new", map[string]any{}, nil, 400, "missing plaintext to encrypt"},
		{"upsert signing type", "POST", "transit/encrypt/new", map[string]any{"plaintext": b64("x"), "type": "ed25519"}, nil, 400, "key type ed25519 does not support encryption"},
		{"upsert bad type", "POST", "transit/encrypt/new", map[string]any{"plaintext": b64("x"), "type": "des"}, nil, 400, `invalid key type "des"…`},
		{"upsert bad batch", "POST", "transit/encrypt/new", map[string]any{"batch_input": []any{map[string]any{"plaintext": "!"}}}, nil, 400, ""},

		// Config, trim, delete.
		{"min_decryption_version above latest", "POST", "transit/keys/aes/config", map[string]any{"min_decryption_version": 3}, nil, 400, "cannot set min_decryption_version to 3: the latest key version is 1"},
		{"negative min_decryption_version", "POST", "transit/keys/aes/config", map[string]any{"min_decryption_version": -1}, nil, 400, "min_decryption_version cannot be negative"},
		{"min_decryption_version not a number", "POST", "transit/keys/aes/config", map[string]any{"min_decryption_version": "abc"}, nil, 400, `field "min_decryption_version" must be an integer, got "abc"`},
		{"min_encryption_version above latest", "POST", "transit/keys/aes/config", map[string]any{"min_encryption_version": 2}, nil, 400, "cannot set min_encryption_version to 2: it must be 0 (latest) or at most the latest version 1"},
		{"min_encryption below min_decryption", "POST", "transit/keys/rot/config", map[string]any{"min_encryption_version": 1}, nil, 400, "min_encryption_version (1) cannot be below min_decryption_version (2)"},
		{"config bad value after a good one", "POST", "transit/keys/aes/config", map[string]any{"deletion_allowed": true, "auto_rotate_period": "1m"}, nil, 400, "auto_rotate_period must be 0 to disable, or at least an hour"},
		{"trim without version", "POST", "transit/keys/rot/trim", map[string]any{}, nil, 400, "missing min_available_version"},
		{"trim above min_decryption_version", "POST", "transit/keys/rot/trim", map[string]any{"min_available_version": 3}, nil, 400, "min_available_version (3) cannot be above min_decryption_version (2)"},
		{"trim with min_encryption_version 0", "POST", "transit/keys/aes/trim", map[string]any{"min_available_version": 1}, nil, 400, "min_available_version cannot be set while min_encryption_version is 0 (the latest version): set min_encryption_version first"},
		{"trim zero", "POST", "transit/keys/rot/trim", map[string]any{"min_available_version": 0}, nil, 400, "min_available_version must be positive"},
		{"delete not allowed", "DELETE", "transit/keys/aes", nil, nil, 400, "deletion is not allowed for this key"},

		// Batches.
		{"batch not an array", "POST", "transit/encrypt/aes", map[string]any{"batch_input": "x"}, nil, 400, `field "batch_input" must be an array of objects`},
		{"batch empty", "POST", "transit/encrypt/aes", map[string]any{"batch_input": []any{}}, nil, 400, `field "batch_input" must have at least one item`},
		{"batch of numbers", "POST", "transit/decrypt/aes", map[string]any{"batch_input": []any{1, 2}}, nil, 400, `field "batch_input" must be an array of objects`},
		{"batch bad partial code", "POST", "transit/encrypt/aes", map[string]any{"batch_input": []any{map[string]any{"plaintext": b64("x")}}, "partial_failure_response_code": 99}, nil, 400, "partial_failure_response_code must be an HTTP status code"},

		// Other data operations.
		{"random zero bytes", "POST", "transit/random/0", nil, nil, 400, "bytes must be between 1 and 131072"},
		{"random too many bytes", "POST", "transit/random", map[string]any{"bytes": 1 << 20}, nil, 400, "bytes must be between 1 and 131072"},
		{"random bad format", "POST", "transit/random", map[string]any{"format": "base32"}, nil, 400, `invalid format "base32": use base64 or hex`},
		{"random bad source", "POST", "transit/random/moon", nil, nil, 400, `invalid source "moon": use platform, seal or all`},
		{"hash bad algorithm", "POST", "transit/hash/md5", map[string]any{"input": b64("x")}, nil, 400, `invalid hash algorithm "md5"…`},
		{"sign bad hash", "POST", "transit/sign/ec/md5", map[string]any{"input": b64("x")}, nil, 400, `invalid hash_algorithm "md5"…`},
		{"sign prehashed wrong length", "POST", "transit/sign/ec", map[string]any{"input": b64("x"), "prehashed": true}, nil, 400, "prehashed input must be 32 bytes for hash_algorithm sha2-256, got 1"},
		{"sign bad marshaling", "POST", "transit/sign/ec", map[string]any{"input": b64("x"), "marshaling_algorithm": "der"}, nil, 400, `invalid marshaling_algorithm "der": valid algorithms are asn1, jws`},
		{"sign prehashed not a bool", "POST", "transit/sign/ec", map[string]any{"input": b64("x"), "prehashed": "yes"}, nil, 400, `field "prehashed" must be a boolean, got "yes"`},
		{"hmac bad algorithm", "POST", "transit/hmac/hm/sha1", map[string]any{"input": b64("x")}, nil, 400, `invalid hmac algorithm "sha1"…`},
		{"datakey bad kind", "POST", "transit/datakey/secret/aes", nil, nil, 400, `invalid datakey type "secret": use plaintext or wrapped`},
		{"datakey bad bits", "POST", "transit/datakey/plaintext/aes", map[string]any{"bits": 100}, nil, 400, "invalid bits 100: use 128, 256 or 512"},
		{"export not exportable", "GET", "transit/export/encryption-key/aes", nil, nil, 400, "private key material is not exportable"},
		{"export bad kind", "GET", "transit/export/secret-key/exp", nil, nil, 400, `invalid export type "secret-key": use encryption-key, signing-key, hmac-key or public-key`},
		{"export wrong kind for type", "GET", "transit/export/signing-key/exp", nil, nil, 400, "key type aes256-gcm96 cannot be exported as signing-key"},
		{"export public key of aes", "GET", "transit/export/public-key/aes", nil, nil, 400, "key type aes256-gcm96 has no public key"},
		{"export bad version", "GET", "transit/export/encryption-key/exp/7", nil, nil, 400, `invalid key version "7"`},
		{"export with POST", "POST", "transit/export/encryption-key/exp", nil, nil, 405, "unsupported operation"},

		// sys.
		{"init again", "POST", "sys/init", map[string]any{"secret_shares": 1, "secret_threshold": 1}, nil, 400, "keyraft is already initialized"},
		{"unseal bad key", "POST", "sys/unseal", map[string]any{"key": "zz"}, nil, 400, "'key' must be a valid hex or base64 string"},
		{"unseal no key", "POST", "sys/unseal", map[string]any{}, nil, 400, "'key' must be given in the request body as JSON, or 'reset' set to true"},
		{"health bad code", "GET", "sys/health?activecode=abc", nil, nil, 400, `bad value for activecode parameter: "abc" is not an HTTP status code`},
		{"health bad standbyok", "GET", "sys/health?standbyok=maybe", nil, nil, 400, `bad value for standbyok parameter: "maybe" is not a boolean`},
		{"bad list flag", "GET", "transit/keys?list=maybe", nil, nil, 400, `bad value for list parameter: "maybe" is not a boolean`},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			h.t = t
			before := h.state(names...)
			nEvents := len(h.audit.all())
			hdr := c.hdr
			if hdr == nil {
				hdr = map[string]string{"X-Vault-Token": h.token}
			}
			r := h.doWith(c.method, c.path, c.body, hdr)
			if r.status != c.status {
				t.Fatalf("status %d, want %d; body %s", r.status, c.status, r.raw)
			}
			if c.msg == "" { // a batch: per-item errors
				if res, _ := r.data()["batch_results"].([]any); len(res) == 0 {
					t.Fatalf("body %s, want batch_results", r.raw)
				}
			} else {
				if keys := reflect.ValueOf(r.body).MapKeys(); len(keys) != 1 || len(r.errs()) != 1 {
					t.Fatalf("body %s, want {\"errors\":[one message]}", r.raw)
				}
				got := r.errs()[0]
				if prefix, ok := strings.CutSuffix(c.msg, "…"); ok {
					if !strings.HasPrefix(got, prefix) {
						t.Fatalf("error %q, want it to start with %q", got, prefix)
					}
				} else if got != c.msg {
					t.Fatalf("error %q, want %q", got, c.msg)
				}
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			// The refusal is audited as a denial or an error, with its status.
			evs := h.audit.all()
			if len(evs) != nEvents+1 {
				t.Fatalf("%d audit events for one request", len(evs)-nEvents)
			}
			ev := evs[len(evs)-1]
			wantOutcome := "error"
			if c.status == 403 {
				wantOutcome = "denied"
			}
			if ev.Status != c.status || ev.Outcome != wantOutcome || ev.Error == "" {
				t.Errorf("audit event status %d outcome %q error %q", ev.Status, ev.Outcome, ev.Error)
			}
			// Nothing written, and the server still answers.
			if after := h.state(names...); !reflect.DeepEqual(before, after) {
				t.Fatalf("state changed:\nbefore %+v\nafter  %+v", before, after)
			}
			h.must(200, "GET", "sys/health", nil)
		})
	}
	h.t = t
	// No bad request made a key.
	if r := h.do("GET", "transit/keys/new", nil); r.status != 404 {
		t.Fatalf("key 'new' exists after failed requests: %s", r.raw)
	}
}

// TestBadInputBatchItems checks that a batch with bad items answers per
// item and follows the status rules.
func TestBadInputBatchItems(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("aes", nil)
	good := map[string]any{"plaintext": b64("a"), "reference": "good"}
	bad := map[string]any{"plaintext": "!", "reference": "bad"}
	r := h.must(400, "POST", "transit/encrypt/aes", map[string]any{"batch_input": []any{good, bad}})
	res, _ := r.data()["batch_results"].([]any)
	if len(res) != 2 {
		t.Fatalf("batch_results %s", r.raw)
	}
	g, b := res[0].(map[string]any), res[1].(map[string]any)
	if g["ciphertext"] == nil || g["error"] != nil || g["reference"] != "good" {
		t.Fatalf("good item %v", g)
	}
	if e, _ := b["error"].(string); !strings.HasPrefix(e, `field "plaintext" must be base64-encoded`) || b["reference"] != "bad" || b["ciphertext"] != nil {
		t.Fatalf("bad item %v", b)
	}
	// An upsert batch whose items are all bad creates nothing.
	h.must(400, "POST", "transit/encrypt/new", map[string]any{"batch_input": []any{bad, bad}})
	h.must(404, "GET", "transit/keys/new", nil)
	// One good item is enough to create the key.
	r = h.must(400, "POST", "transit/encrypt/new", map[string]any{"batch_input": []any{bad, good}})
	if res := r.data()["batch_results"].([]any); res[1].(map[string]any)["ciphertext"] == nil {
		t.Fatalf("good item of an upsert batch: %s", r.raw)
	}
	h.must(200, "GET", "transit/keys/new", nil)
}
