package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"

	cryptoki "github.com/miekg/pkcs11"

	ipk "github.com/keyraft/keyraft/internal/pkcs11"
	"github.com/keyraft/keyraft/plugins/sdk"
)

// Errors of Open and of the operations. Test them with errors.Is; PKCS#11
// return values stay reachable with errors.As as a
// github.com/miekg/pkcs11.Error.
var (
	// ErrModule: the PKCS#11 module cannot be loaded or initialized.
	ErrModule = ipk.ErrModule
	// ErrToken: no initialized token in the slot, or not exactly one
	// token with the label.
	ErrToken = ipk.ErrToken
	// ErrPIN: the token refused the PIN (incorrect, locked, expired), or
	// this process is logged in to the token with another PIN.
	ErrPIN = ipk.ErrPIN
	// ErrMechanism: the token lacks CKM_AES_KEY_GEN or CKM_AES_GCM.
	ErrMechanism = errors.New("pkcs11 plugin: the token lacks a required mechanism")
	// ErrClosed: the backend was closed.
	ErrClosed = ipk.ErrClosed
	// ErrKeyNotFound (an item's error): no key object has the handle's
	// CKA_ID and type on the token — destroyed, or another token's.
	ErrKeyNotFound = errors.New("pkcs11 plugin: no such key on the token")
	// ErrDecrypt (an item's error): the ciphertext does not authenticate
	// under the key and associated data.
	ErrDecrypt = errors.New("pkcs11 plugin: decryption failed: wrong key, wrong associated data or a damaged ciphertext")
	// ErrMaterial (an item's error): the key reference carries material;
	// this backend's keys never leave the token, so the node has a
	// key of another backend in hand.
	ErrMaterial = errors.New("pkcs11 plugin: key reference carries material, but this backend keeps its keys in the token")
)

// AES-GCM as this backend uses it: a 96-bit IV drawn by the plugin for
// each encryption, a 128-bit tag.
const (
	gcmIVSize  = ipk.GCMIVSize
	gcmTagSize = ipk.GCMTagSize
	aesKeySize = 32
	hmacSize   = 32
)

// PKCS#11 3.0 names that github.com/miekg/pkcs11 v1.1 does not define.
const (
	ckkECEdwards           = 0x40
	ckmECEdwardsKeyPairGen = 0x1055
	ckmEdDSA               = 0x1057
)

// ed25519OID is CKA_EC_PARAMS for Ed25519: the DER of OID 1.3.101.112.
var ed25519OID = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}

// Backend is the PKCS#11 crypto backend: keys are generated inside the
// token as sensitive, non-extractable token objects and used there by
// CKA_ID. It implements sdk.CryptoBackend and is safe for concurrent
// use; at most Config.MaxSessions calls run at once.
type Backend struct {
	tok  *ipk.Token // module, login and session pool
	hmac bool       // the token does CKM_SHA256_HMAC with generic secrets
	ed   bool       // the token does Ed25519 (CKM_EDDSA)

	mu   sync.RWMutex
	objs map[objKey]cryptoki.ObjectHandle // a cache
}

var _ sdk.CryptoBackend = (*Backend)(nil)

// objKey names a key object: its CKA_ID and CKA_CLASS (an Ed25519 key is
// a private and a public object with one CKA_ID).
type objKey struct {
	id    [idSize]byte
	class byte
}

// Open loads the module, finds the token, logs in and returns the
// backend. Errors wrap ErrConfig, ErrModule, ErrToken, ErrPIN or
// ErrMechanism, and never contain the PIN.
func Open(cfg Config) (*Backend, error) {
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tok, err := ipk.Open(cfg.base(), true) // read/write: Generate and Destroy change token objects
	if err != nil {
		return nil, err
	}
	b := &Backend{tok: tok, objs: map[objKey]cryptoki.ObjectHandle{}}
	mechs, err := tok.Ctx.GetMechanismList(tok.Slot)
	if err != nil {
		_ = tok.Close()
		return nil, fmt.Errorf("pkcs11 plugin: %w: C_GetMechanismList: %w", ErrToken, err)
	}
	has := func(m uint) bool {
		return slices.ContainsFunc(mechs, func(x *cryptoki.Mechanism) bool { return x.Mechanism == m })
	}
	if !has(cryptoki.CKM_AES_KEY_GEN) || !has(cryptoki.CKM_AES_GCM) {
		_ = tok.Close()
		return nil, fmt.Errorf("%w: token %q needs CKM_AES_KEY_GEN and CKM_AES_GCM", ErrMechanism, tok.Label)
	}
	b.hmac = has(cryptoki.CKM_GENERIC_SECRET_KEY_GEN) && has(cryptoki.CKM_SHA256_HMAC)
	b.ed = has(ckmECEdwardsKeyPairGen) && has(ckmEdDSA)
	return b, nil
}

// Close ends every session (logging out when no other user of the
// process shares the login) and releases the module. It waits for
// running calls.
func (b *Backend) Close() error { return b.tok.Close() }

// String describes the backend without secrets.
func (b *Backend) String() string {
	return fmt.Sprintf("pkcs11 crypto backend (module %s, token %q)", b.tok.Path, b.tok.Label)
}

// Capabilities implements sdk.CryptoBackend: aes256-gcm96, ed25519
// when the token has CKM_EDDSA, and hmac-sha256 when it has
// CKM_SHA256_HMAC.
func (b *Backend) Capabilities(context.Context) (sdk.Capabilities, error) {
	c := sdk.Capabilities{KeepsMaterial: true}
	types := []keyType{aesType}
	if b.ed {
		types = append(types, edType)
	}
	if b.hmac {
		types = append(types, hmacType)
	}
	for _, kt := range types {
		c.KeyTypes = append(c.KeyTypes, sdk.KeyTypeCapability{KeyType: kt.name, Operations: slices.Clone(kt.ops)})
	}
	return c, nil
}

// Generate implements sdk.CryptoBackend: a new key inside the token,
// returned as a handle (and, for Ed25519, the public key) only.
func (b *Backend) Generate(ctx context.Context, name string) (sdk.GeneratedKey, error) {
	var kt keyType
	switch {
	case name == aesType.name:
		kt = aesType
	case name == edType.name && b.ed:
		kt = edType
	case name == hmacType.name && b.hmac:
		kt = hmacType
	default:
		return sdk.GeneratedKey{}, fmt.Errorf("pkcs11 plugin: unsupported key type %q", name)
	}
	var id [idSize]byte
	if _, err := rand.Read(id[:]); err != nil {
		return sdk.GeneratedKey{}, err
	}
	a := cryptoki.NewAttribute
	label := fmt.Sprintf("keyraft %s %x", kt.name, id)
	// secret is the protection of every secret or private key object
	// (CKA_WRAP, which private keys lack, is added for secret keys).
	secret := []*cryptoki.Attribute{
		a(cryptoki.CKA_TOKEN, true),
		a(cryptoki.CKA_PRIVATE, true),
		a(cryptoki.CKA_SENSITIVE, true),
		a(cryptoki.CKA_EXTRACTABLE, false),
		a(cryptoki.CKA_UNWRAP, false),
		a(cryptoki.CKA_DERIVE, false),
		a(cryptoki.CKA_ID, id[:]),
		a(cryptoki.CKA_LABEL, label),
	}
	out := sdk.GeneratedKey{Handle: makeHandle(kt, id[:])}
	err := b.withSession(ctx, func(sh cryptoki.SessionHandle) error {
		c := b.tok.Ctx
		switch kt.code {
		case edType.code:
			pub := []*cryptoki.Attribute{
				a(cryptoki.CKA_CLASS, cryptoki.CKO_PUBLIC_KEY),
				a(cryptoki.CKA_KEY_TYPE, ckkECEdwards),
				a(cryptoki.CKA_EC_PARAMS, ed25519OID),
				a(cryptoki.CKA_TOKEN, true),
				a(cryptoki.CKA_PRIVATE, false),
				a(cryptoki.CKA_VERIFY, true),
				a(cryptoki.CKA_ENCRYPT, false),
				a(cryptoki.CKA_WRAP, false),
				a(cryptoki.CKA_ID, id[:]),
				a(cryptoki.CKA_LABEL, label),
			}
			priv := append([]*cryptoki.Attribute{
				a(cryptoki.CKA_CLASS, cryptoki.CKO_PRIVATE_KEY),
				a(cryptoki.CKA_KEY_TYPE, ckkECEdwards),
				a(cryptoki.CKA_SIGN, true),
				a(cryptoki.CKA_DECRYPT, false),
			}, secret...)
			pubObj, privObj, err := c.GenerateKeyPair(sh, []*cryptoki.Mechanism{cryptoki.NewMechanism(ckmECEdwardsKeyPairGen, nil)}, pub, priv)
			if err != nil {
				return err
			}
			attrs, err := c.GetAttributeValue(sh, pubObj, []*cryptoki.Attribute{a(cryptoki.CKA_EC_POINT, nil)})
			if err != nil {
				return fmt.Errorf("reading the public key: %w", err)
			}
			if out.PublicKey, err = edPoint(attrs[0].Value); err != nil {
				return err
			}
			b.remember(id, cryptoki.CKO_PUBLIC_KEY, pubObj)
			b.remember(id, cryptoki.CKO_PRIVATE_KEY, privObj)
			return nil
		case aesType.code:
			tmpl := append([]*cryptoki.Attribute{
				a(cryptoki.CKA_CLASS, cryptoki.CKO_SECRET_KEY),
				a(cryptoki.CKA_KEY_TYPE, cryptoki.CKK_AES), a(cryptoki.CKA_VALUE_LEN, aesKeySize),
				a(cryptoki.CKA_ENCRYPT, true), a(cryptoki.CKA_DECRYPT, true), a(cryptoki.CKA_SIGN, false), a(cryptoki.CKA_VERIFY, false),
				a(cryptoki.CKA_WRAP, false),
			}, secret...)
			obj, err := c.GenerateKey(sh, []*cryptoki.Mechanism{cryptoki.NewMechanism(cryptoki.CKM_AES_KEY_GEN, nil)}, tmpl)
			if err != nil {
				return err
			}
			b.remember(id, cryptoki.CKO_SECRET_KEY, obj)
			return nil
		default:
			tmpl := append([]*cryptoki.Attribute{
				a(cryptoki.CKA_CLASS, cryptoki.CKO_SECRET_KEY),
				a(cryptoki.CKA_KEY_TYPE, cryptoki.CKK_GENERIC_SECRET), a(cryptoki.CKA_VALUE_LEN, hmacSize),
				a(cryptoki.CKA_ENCRYPT, false), a(cryptoki.CKA_DECRYPT, false), a(cryptoki.CKA_SIGN, true), a(cryptoki.CKA_VERIFY, true),
				a(cryptoki.CKA_WRAP, false),
			}, secret...)
			obj, err := c.GenerateKey(sh, []*cryptoki.Mechanism{cryptoki.NewMechanism(cryptoki.CKM_GENERIC_SECRET_KEY_GEN, nil)}, tmpl)
			if err != nil {
				return err
			}
			b.remember(id, cryptoki.CKO_SECRET_KEY, obj)
			return nil
		}
	})
	if err != nil {
		return sdk.GeneratedKey{}, fmt.Errorf("pkcs11 plugin: generating a %s key on token %q: %w", kt.name, b.tok.Label, err)
	}
	return out, nil
}

// edPoint decodes CKA_EC_POINT of an Ed25519 public key: the 32 bytes,
// DER-wrapped in an OCTET STRING (as PKCS#11 3.0 says and SoftHSM does)
// or bare.
func edPoint(v []byte) ([]byte, error) {
	switch {
	case len(v) == 34 && v[0] == 0x04 && v[1] == 32:
		return bytes.Clone(v[2:]), nil
	case len(v) == 32:
		return bytes.Clone(v), nil
	}
	return nil, fmt.Errorf("pkcs11 plugin: the token's Ed25519 public key (CKA_EC_POINT) has %d bytes, want 32 (or 34 DER)", len(v))
}

// Destroy implements sdk.CryptoBackend: it deletes the key's objects. A
// key that is already gone is not an error, so a Destroy can be retried.
func (b *Backend) Destroy(ctx context.Context, ref sdk.KeyRef) error {
	kt, id, err := parseHandle(ref.Handle)
	if err != nil {
		return err
	}
	return b.withSession(ctx, func(sh cryptoki.SessionHandle) error {
		objs, err := b.find(sh, kt, id, 0, 16)
		if err != nil {
			return err
		}
		b.forget(id)
		for _, o := range objs {
			if err := b.tok.Ctx.DestroyObject(sh, o); err != nil && !ipk.ObjectLost(err) {
				return fmt.Errorf("pkcs11 plugin: C_DestroyObject: %w", err)
			}
		}
		return nil
	})
}

// withSession runs fn on a borrowed session, on a new one when the
// session was lost.
func (b *Backend) withSession(ctx context.Context, fn func(cryptoki.SessionHandle) error) error {
	return b.each(ctx, 1, func(sh cryptoki.SessionHandle, _ int) error { return fn(sh) }, nil)
}

// each runs fn for items 0..n-1 in order on one borrowed session. An
// item whose session was lost runs again on a fresh session (as many
// times as the pool has slots: they tend to be lost together; after that
// the token is failing and so is the call). Other errors are the item's:
// setErr records them (nil setErr: the call's). The call's own error is
// for no session, a closed backend, a failing token or ctx.
func (b *Backend) each(ctx context.Context, n int, fn func(sh cryptoki.SessionHandle, i int) error, setErr func(int, error)) error {
	if n == 0 {
		return nil
	}
	s, err := b.tok.Get(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if s != nil {
			b.tok.Put(s)
		}
	}()
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		for tries := 0; ; tries++ {
			err := fn(s.H, i)
			if err == nil {
				break
			}
			if ipk.SessionLost(err) {
				b.tok.Discard(s)
				s = nil
				if tries >= b.tok.Size() {
					return fmt.Errorf("pkcs11 plugin: token %q: sessions keep failing: %w", b.tok.Label, err)
				}
				if s, err = b.tok.Get(ctx); err != nil {
					return err
				}
				continue
			}
			if setErr == nil {
				return err
			}
			setErr(i, err)
			break
		}
	}
	return nil
}

// find returns the key objects of type kt with the CKA_ID and, unless
// it is 0, the class (at most max).
func (b *Backend) find(sh cryptoki.SessionHandle, kt keyType, id []byte, class uint, max int) ([]cryptoki.ObjectHandle, error) {
	var keyType uint
	switch kt.code {
	case aesType.code:
		keyType = cryptoki.CKK_AES
	case edType.code:
		keyType = ckkECEdwards
	default:
		keyType = cryptoki.CKK_GENERIC_SECRET
	}
	tmpl := []*cryptoki.Attribute{
		cryptoki.NewAttribute(cryptoki.CKA_KEY_TYPE, keyType),
		cryptoki.NewAttribute(cryptoki.CKA_ID, id),
	}
	if class != 0 {
		tmpl = append(tmpl, cryptoki.NewAttribute(cryptoki.CKA_CLASS, class))
	}
	objs, err := ipk.FindObjects(b.tok.Ctx, sh, tmpl, max)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 plugin: %w", err)
	}
	return objs, nil
}

// classFor is the object class an operation uses.
func classFor(kt keyType, op sdk.Operation) uint {
	switch {
	case kt.code != edType.code:
		return cryptoki.CKO_SECRET_KEY
	case op == sdk.OpSign:
		return cryptoki.CKO_PRIVATE_KEY
	}
	return cryptoki.CKO_PUBLIC_KEY
}

// object returns the key object of a handle and class, from the cache
// or the token.
func (b *Backend) object(sh cryptoki.SessionHandle, kt keyType, id []byte, class uint) (cryptoki.ObjectHandle, error) {
	k := objKey{[idSize]byte(id), byte(class)}
	b.mu.RLock()
	o, ok := b.objs[k]
	b.mu.RUnlock()
	if ok {
		return o, nil
	}
	objs, err := b.find(sh, kt, id, class, 2)
	if err != nil {
		return 0, err
	}
	switch len(objs) {
	case 0:
		return 0, fmt.Errorf("%w: %s key %x on token %q", ErrKeyNotFound, kt.name, id, b.tok.Label)
	case 1:
	default:
		return 0, fmt.Errorf("pkcs11 plugin: two objects on token %q have CKA_ID %x; refusing to guess", b.tok.Label, id)
	}
	b.remember([idSize]byte(id), class, objs[0])
	return objs[0], nil
}

func (b *Backend) remember(id [idSize]byte, class uint, o cryptoki.ObjectHandle) {
	b.mu.Lock()
	b.objs[objKey{id, byte(class)}] = o
	b.mu.Unlock()
}

// forget drops every cached object of a CKA_ID.
func (b *Backend) forget(id []byte) {
	b.mu.Lock()
	for _, class := range []uint{cryptoki.CKO_SECRET_KEY, cryptoki.CKO_PRIVATE_KEY, cryptoki.CKO_PUBLIC_KEY} {
		delete(b.objs, objKey{[idSize]byte(id), byte(class)})
	}
	b.mu.Unlock()
}

// withKey checks a reference for op, finds its object and runs fn with
// it; a stale cached object is looked up again once.
func (b *Backend) withKey(sh cryptoki.SessionHandle, ref sdk.KeyRef, op sdk.Operation, fn func(cryptoki.ObjectHandle) error) error {
	if len(ref.Material) != 0 {
		return ErrMaterial
	}
	kt, id, err := parseHandle(ref.Handle)
	if err != nil {
		return err
	}
	if !kt.supports(op) {
		return fmt.Errorf("pkcs11 plugin: key type %s does not support %s", kt.name, op)
	}
	class := classFor(kt, op)
	obj, err := b.object(sh, kt, id, class)
	if err != nil {
		return err
	}
	err = fn(obj)
	if ipk.ObjectLost(err) {
		b.forget(id)
		if obj, err = b.object(sh, kt, id, class); err != nil {
			return err
		}
		err = fn(obj)
	}
	return err
}

// Encrypt implements sdk.CryptoBackend. A ciphertext is IV || ciphertext
// || tag, the shape of the soft backend's.
func (b *Backend) Encrypt(ctx context.Context, items []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
	out := make([]sdk.EncryptResult, len(items))
	err := b.each(ctx, len(items), func(sh cryptoki.SessionHandle, i int) error {
		it := items[i]
		return b.withKey(sh, it.Key, sdk.OpEncrypt, func(obj cryptoki.ObjectHandle) error {
			iv := make([]byte, gcmIVSize)
			if _, err := rand.Read(iv); err != nil {
				return err
			}
			ct, used, err := ipk.GCMEncrypt(b.tok.Ctx, sh, obj, iv, it.AssocData, it.Plaintext)
			if err != nil {
				return fmt.Errorf("pkcs11 plugin: %w", err)
			}
			sealed := make([]byte, 0, gcmIVSize+len(ct))
			out[i].Ciphertext = append(append(sealed, used...), ct...)
			return nil
		})
	}, func(i int, err error) { out[i].Err = err })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Decrypt implements sdk.CryptoBackend.
func (b *Backend) Decrypt(ctx context.Context, items []sdk.DecryptItem) ([]sdk.DecryptResult, error) {
	out := make([]sdk.DecryptResult, len(items))
	err := b.each(ctx, len(items), func(sh cryptoki.SessionHandle, i int) error {
		it := items[i]
		return b.withKey(sh, it.Key, sdk.OpDecrypt, func(obj cryptoki.ObjectHandle) error {
			if len(it.Ciphertext) < gcmIVSize+gcmTagSize {
				return fmt.Errorf("%w: %d bytes is shorter than an IV and a tag", ErrDecrypt, len(it.Ciphertext))
			}
			pt, err := ipk.GCMDecrypt(b.tok.Ctx, sh, obj, it.Ciphertext[:gcmIVSize], it.AssocData, it.Ciphertext[gcmIVSize:])
			var de *ipk.DecryptError
			switch {
			case err == nil:
			case ipk.SessionLost(err) || ipk.ObjectLost(err):
				return err // for each and withKey to retry
			case errors.As(err, &de):
				return fmt.Errorf("%w (%w)", ErrDecrypt, err)
			default:
				return fmt.Errorf("pkcs11 plugin: %w", err)
			}
			if pt == nil {
				pt = []byte{}
			}
			out[i].Plaintext = pt
			return nil
		})
	}, func(i int, err error) { out[i].Err = err })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// HMAC implements sdk.CryptoBackend (CKM_SHA256_HMAC).
func (b *Backend) HMAC(ctx context.Context, items []sdk.HMACItem) ([]sdk.HMACResult, error) {
	out := make([]sdk.HMACResult, len(items))
	mech := []*cryptoki.Mechanism{cryptoki.NewMechanism(cryptoki.CKM_SHA256_HMAC, nil)}
	err := b.each(ctx, len(items), func(sh cryptoki.SessionHandle, i int) error {
		it := items[i]
		return b.withKey(sh, it.Key, sdk.OpHMAC, func(obj cryptoki.ObjectHandle) error {
			if err := b.tok.Ctx.SignInit(sh, mech, obj); err != nil {
				return fmt.Errorf("C_SignInit(CKM_SHA256_HMAC): %w", err)
			}
			mac, err := b.tok.Ctx.Sign(sh, it.Message)
			if err != nil {
				return fmt.Errorf("C_Sign(CKM_SHA256_HMAC): %w", err)
			}
			out[i].MAC = mac
			return nil
		})
	}, func(i int, err error) { out[i].Err = err })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Sign implements sdk.CryptoBackend: pure Ed25519 (CKM_EDDSA) inside
// the token.
func (b *Backend) Sign(ctx context.Context, items []sdk.SignItem) ([]sdk.SignResult, error) {
	out := make([]sdk.SignResult, len(items))
	mech := []*cryptoki.Mechanism{cryptoki.NewMechanism(ckmEdDSA, nil)}
	err := b.each(ctx, len(items), func(sh cryptoki.SessionHandle, i int) error {
		it := items[i]
		return b.withKey(sh, it.Key, sdk.OpSign, func(obj cryptoki.ObjectHandle) error {
			if err := b.tok.Ctx.SignInit(sh, mech, obj); err != nil {
				return fmt.Errorf("C_SignInit(CKM_EDDSA): %w", err)
			}
			sig, err := b.tok.Ctx.Sign(sh, it.Message)
			if err != nil {
				return fmt.Errorf("C_Sign(CKM_EDDSA): %w", err)
			}
			out[i].Signature = sig
			return nil
		})
	}, func(i int, err error) { out[i].Err = err })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Verify implements sdk.CryptoBackend inside the token. A signature the
// token rejects is Valid false with no error.
func (b *Backend) Verify(ctx context.Context, items []sdk.VerifyItem) ([]sdk.VerifyResult, error) {
	out := make([]sdk.VerifyResult, len(items))
	mech := []*cryptoki.Mechanism{cryptoki.NewMechanism(ckmEdDSA, nil)}
	err := b.each(ctx, len(items), func(sh cryptoki.SessionHandle, i int) error {
		it := items[i]
		return b.withKey(sh, it.Key, sdk.OpVerify, func(obj cryptoki.ObjectHandle) error {
			if len(it.Signature) != 64 {
				out[i].Valid = false
				return nil
			}
			if err := b.tok.Ctx.VerifyInit(sh, mech, obj); err != nil {
				return fmt.Errorf("C_VerifyInit(CKM_EDDSA): %w", err)
			}
			err := b.tok.Ctx.Verify(sh, it.Message, it.Signature)
			switch {
			case err == nil:
				out[i].Valid = true
			case ipk.IsCode(err, cryptoki.CKR_SIGNATURE_INVALID), ipk.IsCode(err, cryptoki.CKR_SIGNATURE_LEN_RANGE):
				out[i].Valid = false
			default:
				return fmt.Errorf("C_Verify(CKM_EDDSA): %w", err)
			}
			return nil
		})
	}, func(i int, err error) { out[i].Err = err })
	if err != nil {
		return nil, err
	}
	return out, nil
}
