package transit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	// Hashes that hash_function may name, registered for crypto.Hash.New.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/keys"
)

// Bring your own key, in Vault's format: the caller makes an ephemeral
// AES-256 key, wraps the key to import with it (AES-KWP, RFC 5649),
// wraps the ephemeral key with RSA-OAEP under the cluster's wrapping key
// (GET transit/wrapping_key) and sends
//
//	ciphertext = base64(RSA-OAEP(ephemeral key) ‖ KWP(ephemeral key, key))
//
// Only this node's memory sees the key in the clear; it is stored like a
// generated key, under the barrier. The key material is raw bytes for
// symmetric types (aes128/256-gcm96, chacha20-poly1305, xchacha20-poly1305,
// hmac) and a PKCS#8 DER private key for rsa, ecdsa and ed25519.

// importHashes are the OAEP hashes hash_function may name (Vault's list).
var importHashes = map[string]crypto.Hash{
	"SHA1": crypto.SHA1, "SHA224": crypto.SHA224, "SHA256": crypto.SHA256,
	"SHA384": crypto.SHA384, "SHA512": crypto.SHA512,
}

// ImportKey handles POST transit/keys/:name/import: a new key whose
// version 1 is the unwrapped material. The name must be free (as in
// Vault: import never replaces a key; import_version adds versions to an
// imported one). Imported keys are builtin keys, used in this process.
// It answers 204 like Vault. Every fault of the request (the ciphertext,
// the material, the settings, an existing name) is an *Error with status
// 400; store errors (store.ErrSealed, a Raft failure) pass through.
func (e *Engine) ImportKey(ctx context.Context, name string, in *Fields) (*Response, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if in.Has("convergent_encryption") {
		return nil, badRequest("import cannot be used on keys with convergent encryption enabled")
	}
	if b := backendParam(in); b != "" && b != Builtin {
		return nil, badRequest("imported keys are builtin keys: backend %q cannot be used", Truncate(b))
	}
	p, err := policyParams(name, in, keys.AES256GCM96)
	if err != nil {
		return nil, err
	}
	if p.AllowRotation, err = in.Bool("allow_rotation", false); err != nil {
		return nil, err
	}
	if p.AutoRotatePeriod > 0 && !p.AllowRotation {
		return nil, badRequest("allow_rotation must be set to true if auto-rotation is enabled")
	}
	p.Imported = true
	if rev, err := e.store.Revision(fsm.RecordTransitKey + name); err != nil {
		return nil, err
	} else if rev != 0 {
		return nil, errImportExisting
	}
	material, err := e.unwrapImport(in)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	v, err := importedVersion(p.Type, 1, e.Now().UTC(), material)
	if err != nil {
		return nil, err
	}
	defer v.Zero()
	if p.Type == keys.HMAC {
		p.KeySize = len(v.Secret)
	}
	p.Versions = map[int]*keys.Version{1: v}
	if err := checkMaterial(p, v); err != nil {
		return nil, err
	}
	var made []*Policy // copies with the material, zeroed once committed
	defer func() {
		for _, m := range made {
			m.zero()
		}
	}()
	_, err = e.update(ctx, name, func(cur *Policy) (*Policy, error) {
		if cur != nil {
			return nil, errImportExisting
		}
		np := p.clone()
		made = append(made, np)
		if err := e.startLifecycle(ctx, np, in); err != nil {
			return nil, err
		}
		if h := np.Lifecycle.History; len(h) > 0 {
			h[len(h)-1].Detail = strings.TrimSpace("imported " + h[len(h)-1].Detail)
		}
		return np, nil
	})
	if err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusNoContent}, nil
}

var errImportExisting = badRequest("the import path cannot be used with an existing key; use import_version to add a version to an imported key")

// ImportKeyVersion handles POST transit/keys/:name/import_version: the
// unwrapped material becomes the key's next version. version, when
// given, must be that next version: a version that already holds a
// private key is never replaced (Vault refuses it too), since its
// ciphertexts and signatures would stop verifying. Only imported keys
// take versions this way.
func (e *Engine) ImportKeyVersion(ctx context.Context, name string, in *Fields) (*Response, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	want := 0
	if in.Has("version") {
		var err error
		if want, err = in.Int("version", 0); err != nil {
			return nil, err
		}
		if want < 1 {
			return nil, badRequest("version must be a positive key version")
		}
	}
	l, err := e.get(name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, badRequest("no key found with name %s; to import a new key, use the import endpoint", name)
	}
	if _, err := importableVersion(e.cryptoOf(l.policy), l.policy, want); err != nil {
		return nil, err
	}
	material, err := e.unwrapImport(in)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	var made []*Policy // the copies read-modify-write made, zeroed at the end
	defer func() {
		for _, m := range made {
			m.zero()
		}
	}()
	_, err = e.update(ctx, name, func(p *Policy) (*Policy, error) {
		if p == nil {
			return nil, badRequest("no key found with name %s; to import a new key, use the import endpoint", name)
		}
		made = append(made, p)
		im, err := importableVersion(e.cryptoOf(p), p, want)
		if err != nil {
			return nil, err
		}
		if err := e.allow(ctx, p, OpRotate); err != nil {
			return nil, err
		}
		n := p.LatestVersion + 1
		v, err := importedVersion(p.Type, n, e.Now().UTC(), material)
		if err != nil {
			return nil, err
		}
		if err := im.CheckImport(p, v); err != nil {
			v.Zero()
			return nil, err
		}
		p.Versions[n] = v
		p.LatestVersion = n
		if p.Type == keys.HMAC {
			p.KeySize = len(v.Secret)
		}
		p.record(ctx, e.Now(), EventRotate, n, "imported version")
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusNoContent}, nil
}

// importableVersion checks that p, whose crypto is c, takes an imported
// version numbered want (0: the next one).
func importableVersion(c KeyCrypto, p *Policy, want int) (Importer, error) {
	im, can := c.(Importer)
	switch {
	case !p.Imported:
		return nil, badRequest("the import_version endpoint can only be used with an imported key")
	case p.Convergent:
		return nil, badRequest("import_version cannot be used on keys with convergent encryption enabled")
	case !can:
		return nil, badRequest("key lives on crypto backend %q: key material cannot be imported into it", c.Name())
	case want != 0 && want <= p.LatestVersion:
		return nil, badRequest("version %d already holds a private key; it cannot be replaced (its ciphertexts and signatures would no longer verify): import without version to add version %d", want, p.LatestVersion+1)
	case want != 0 && want != p.LatestVersion+1:
		return nil, badRequest("version %d is not the next version of the key (%d)", want, p.LatestVersion+1)
	case p.LatestVersion >= maxVersions:
		return nil, badRequest("the key has reached its maximum number of versions")
	}
	return im, nil
}

// checkMaterial proves the version usable with p's settings before it is
// stored.
func checkMaterial(p *Policy, v *keys.Version) error {
	h, err := keys.NewHandle(p.spec(), v)
	if err != nil {
		return userError(err)
	}
	h.Zero()
	return nil
}

// unwrapImport decodes and unwraps the ciphertext of an import request.
// The errors say which layer failed, never anything about the material.
func (e *Engine) unwrapImport(in *Fields) ([]byte, error) {
	if in.Has("public_key") {
		return nil, badRequest("importing a public key alone is not supported: send the private key as ciphertext")
	}
	if !in.Has("ciphertext") {
		return nil, badRequest("missing ciphertext: the wrapped key to import")
	}
	hashName, err := in.String("hash_function", "SHA256")
	if err != nil {
		return nil, err
	}
	hash, known := importHashes[strings.ToUpper(hashName)]
	if !known {
		return nil, badRequest("unknown hash_function %q: use SHA1, SHA224, SHA256, SHA384 or SHA512", Truncate(hashName))
	}
	ct, err := in.Base64("ciphertext")
	if err != nil {
		return nil, err
	}
	defer clear(ct)
	wk, err := e.existingWrappingKey()
	if err != nil {
		return nil, err
	}
	return unwrapImportCiphertext(wk, hash, ct)
}

// existingWrappingKey is the wrapping key, which an import ciphertext
// can only have been made for if it exists already.
func (e *Engine) existingWrappingKey() (*rsa.PrivateKey, error) {
	rev, err := e.store.Revision(fsm.RecordTransitWrappingKey)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		return nil, badRequest("this cluster has no wrapping key yet: read transit/wrapping_key and wrap the key to import with it")
	}
	k, _, err := e.wrappingKey(context.Background())
	return k, err
}

// unwrapImportCiphertext undoes both layers of an import ciphertext.
func unwrapImportCiphertext(wk *rsa.PrivateKey, hash crypto.Hash, ct []byte) ([]byte, error) {
	if len(ct) <= wrappedEphemeralKeyLen {
		return nil, badRequest("ciphertext is too short: it must be the %d-byte RSA-OAEP wrapped AES key followed by the AES-KWP wrapped key", wrappedEphemeralKeyLen)
	}
	eph, err := rsa.DecryptOAEP(hash.New(), rand.Reader, wk, ct[:wrappedEphemeralKeyLen], nil)
	if err != nil {
		return nil, badRequest("could not unwrap the ephemeral AES key: it was not wrapped with this cluster's wrapping key and hash_function %s", hashLabel(hash))
	}
	defer clear(eph)
	if len(eph) != 32 {
		return nil, badRequest("the ephemeral AES key must be 256 bits (32 bytes), got %d bytes", len(eph))
	}
	key, err := kwpUnwrap(eph, ct[wrappedEphemeralKeyLen:])
	if errors.Is(err, errKWPIntegrity) {
		return nil, badRequest("could not unwrap the key: AES-KWP integrity check failed (the key was not wrapped with the ephemeral AES key, or was altered)")
	}
	if err != nil {
		return nil, badRequest("could not unwrap the key: %v", err)
	}
	return key, nil
}

func hashLabel(h crypto.Hash) string {
	for name, v := range importHashes {
		if v == h {
			return name
		}
	}
	return h.String()
}

// maxPKCS8Len bounds imported PKCS#8 material before it is parsed: an
// RSA-8192 key is about 4.8 KB, so anything larger (the largest type
// keyraft holds is RSA-4096, about 2.4 KB) is refused unparsed.
const maxPKCS8Len = 5 << 10

// importedSizes are the raw key lengths of the symmetric types.
var importedSizes = map[keys.Type]int{
	keys.AES128GCM96: 16, keys.AES256GCM96: 32, keys.ChaCha20Poly1305: 32, keys.XChaCha20Poly1305: 32,
}

// importedVersion turns imported material into a version of type t in
// keyraft's form (see keys.Version): symmetric keys as they are, an
// ed25519 key as its seed, ecdsa and rsa keys as PKCS#8 DER again. A
// fresh HMAC key goes with it, as for a generated version (Vault does the
// same). Errors are 400s naming what is wrong with the material's shape.
func importedVersion(t keys.Type, n int, now time.Time, material []byte) (*keys.Version, error) {
	v := &keys.Version{Version: n, CreationTime: now}
	badType := func(what string) error {
		return badRequest("the imported key is not a valid %s key: %s", t, what)
	}
	switch {
	case importedSizes[t] != 0:
		if len(material) != importedSizes[t] {
			return nil, badType("expected " + strconv.Itoa(importedSizes[t]) + " raw bytes, got " + strconv.Itoa(len(material)))
		}
		v.Secret = append([]byte(nil), material...)
	case t == keys.HMAC:
		if len(material) < minHMACKeySize || len(material) > maxHMACKeySize {
			return nil, badType("expected " + strconv.Itoa(minHMACKeySize) + " to " + strconv.Itoa(maxHMACKeySize) + " raw bytes, got " + strconv.Itoa(len(material)))
		}
		v.Secret = append([]byte(nil), material...)
	default:
		if len(material) > maxPKCS8Len {
			// Parsing validates the key, which for an RSA modulus far
			// beyond any supported size costs seconds of CPU.
			return nil, badType("expected a PKCS#8 DER private key of at most " + strconv.Itoa(maxPKCS8Len) + " bytes, got " + strconv.Itoa(len(material)))
		}
		priv, err := x509.ParsePKCS8PrivateKey(material)
		if err != nil {
			return nil, badType("expected a PKCS#8 DER private key")
		}
		switch k := priv.(type) {
		case ed25519.PrivateKey:
			if t != keys.Ed25519 {
				return nil, badType("got an ed25519 key")
			}
			v.Secret = append([]byte(nil), k.Seed()...)
			clear(k)
		case *ecdsa.PrivateKey:
			if want := ecdsaCurveName(t); want == "" || k.Curve.Params().Name != want {
				return nil, badType("got an ECDSA key on curve " + k.Curve.Params().Name)
			}
			if v.Secret, err = x509.MarshalPKCS8PrivateKey(k); err != nil {
				return nil, badType("the ECDSA key does not encode")
			}
		case *rsa.PrivateKey:
			defer zeroRSA(k)
			if bits := rsaTypeBits(t); bits == 0 || k.N.BitLen() != bits {
				return nil, badType("got an RSA key of " + strconv.Itoa(k.N.BitLen()) + " bits")
			}
			if v.Secret, err = x509.MarshalPKCS8PrivateKey(k); err != nil {
				return nil, badType("the RSA key does not encode")
			}
		default:
			return nil, badType("unsupported private key kind")
		}
	}
	v.HMACKey = make([]byte, 32)
	rand.Read(v.HMACKey)
	return v, nil
}

func ecdsaCurveName(t keys.Type) string {
	switch t {
	case keys.ECDSAP256:
		return "P-256"
	case keys.ECDSAP384:
		return "P-384"
	case keys.ECDSAP521:
		return "P-521"
	}
	return ""
}

func rsaTypeBits(t keys.Type) int {
	switch t {
	case keys.RSA2048:
		return 2048
	case keys.RSA3072:
		return 3072
	case keys.RSA4096:
		return 4096
	}
	return 0
}

// checkRotation refuses to rotate an imported key that does not allow it
// (Vault's allow_rotation). For the leader's automatic rotations
// (auto_rotate_period, usage) it returns errNothingToDo, so the passes
// skip the key instead of failing.
func (p *Policy) checkRotation(automatic bool) error {
	if !p.Imported || p.AllowRotation {
		return nil
	}
	if automatic {
		return errNothingToDo
	}
	return badRequest("imported key %s does not allow rotation: it was imported without allow_rotation; add versions with import_version", p.Name)
}

// WrapForImport makes the ciphertext of an import request the way a
// client must: a fresh AES-256 key wraps key (AES-KWP) and is itself
// wrapped with RSA-OAEP (hashName, "" = SHA256) under the public key
// wrappingKeyPEM, as transit/wrapping_key returns it. The CLI uses it so
// that the key never leaves the operator's machine unwrapped.
func WrapForImport(wrappingKeyPEM, hashName string, key []byte) (string, error) {
	if hashName == "" {
		hashName = "SHA256"
	}
	hash, known := importHashes[strings.ToUpper(hashName)]
	if !known {
		return "", fmt.Errorf("unknown hash function %q: use SHA1, SHA224, SHA256, SHA384 or SHA512", hashName)
	}
	block, _ := pem.Decode([]byte(wrappingKeyPEM))
	if block == nil || block.Type != "PUBLIC KEY" {
		return "", errors.New("the wrapping key is not a PEM public key")
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	pub, isRSA := parsed.(*rsa.PublicKey)
	if err != nil || !isRSA || pub.N.BitLen() != wrappingKeyBits {
		return "", errors.New("the wrapping key is not an RSA-4096 public key")
	}
	eph := make([]byte, 32)
	rand.Read(eph)
	defer clear(eph)
	wrappedEph, err := rsa.EncryptOAEP(hash.New(), rand.Reader, pub, eph, nil)
	if err != nil {
		return "", err
	}
	wrappedKey, err := kwpWrap(eph, key)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(append(wrappedEph, wrappedKey...)), nil
}
