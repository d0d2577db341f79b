package transit

import (
	"context"
	"fmt"

	"github.com/keyraft/keyraft/keys"
)

// Every transit operation is written once, over KeyCrypto: one key's
// versions, used by number, a batch of items per call. A key in this
// process (package keys) and a key on a crypto backend plugin (an
// sdk.CryptoBackend, backend.go) are its two implementations. The
// abilities only some have are optional upgrades an operation checks with
// a type assertion (`if d, ok := c.(Deriver); ok`), so that it asks "can
// this key's crypto do X" rather than "where does the key live". A key
// whose crypto lacks an ability is refused the operation with a 400.

// KeyCrypto is what every operation calls. Each batch method fills in
// the results of its items in place; an item whose Err is already set
// failed before the call and is skipped. The returned error is the
// failure of the whole call (a backend that is down): the request fails.
type KeyCrypto interface {
	// Name is the backend's name (Builtin for keys in this process).
	Name() string
	// Has reports whether version v can be used: it exists and its
	// material was not trimmed.
	Has(v int) bool
	// PublicKey is version v's public key as the key info shows it, ""
	// when there is none.
	PublicKey(v int) string
	Encrypt(ctx context.Context, items []EncryptItem) error
	Decrypt(ctx context.Context, items []DecryptItem) error
	Sign(ctx context.Context, items []SignItem) error
	Verify(ctx context.Context, items []VerifyItem) error
	HMAC(ctx context.Context, items []HMACItem) error

	// generate adds version n of p (material, or a handle and what the
	// backend returned), for create and rotate.
	generate(ctx context.Context, e *Engine, p *Policy, n int) error
	// zero drops the unwrapped material (the node seals).
	zero()
}

// Deriver is a KeyCrypto that derives per item from a context (the
// Options' Context: derived and convergent keys). Without it, a request
// with a context or nonce is refused.
type Deriver interface {
	// DerivedPublicKey is the public key of version v derived for context.
	DerivedPublicKey(v int, context []byte) (string, error)
}

// OptionSigner is a KeyCrypto whose Sign and Verify take keys.SignOptions
// (hash and signature algorithm, marshaling, salt length, prehashed,
// context). Without it, those options are refused: the key signs its
// input as is (pure ed25519).
type OptionSigner interface{ SignsWithOptions() }

// HMACAlgorithmer is a KeyCrypto whose HMAC takes any algorithm package
// keys knows. Without it, only sha2-256.
type HMACAlgorithmer interface{ HMACWithAlgorithm() }

// SeparateHMAC is a KeyCrypto whose key versions of types other than
// hmac have a separate HMAC key (Vault's hmac endpoint works with any
// key). HMACKeys is the crypto those HMACs are made with, false when this
// key has none. Without it, hmac is refused for keys not of type hmac.
type SeparateHMAC interface {
	HMACKeys() (KeyCrypto, bool)
}

// Exporter is a KeyCrypto whose material the node can read: export and
// plaintext backup. Without it, a key cannot be made exportable.
type Exporter interface {
	Export(kind string, v int) (string, error)
	// Versions are the versions with material, in any order.
	Versions() []int
}

// Importer is a KeyCrypto that takes key material from outside (BYOK:
// import_version). CheckImport proves a version usable with p's settings
// before it is stored.
type Importer interface {
	CheckImport(p *Policy, v *keys.Version) error
}

// The items of a batch call and their results.
type (
	EncryptItem struct {
		Version   int
		Plaintext []byte
		// Options' Context is for a Deriver only.
		Options    keys.EncryptOptions
		Ciphertext string // "vault:v<N>:…"
		Err        error
	}
	DecryptItem struct {
		Version    int
		Ciphertext []byte // the body after "vault:v<N>:"
		Options    keys.EncryptOptions
		Plaintext  []byte
		Err        error
	}
	SignItem struct {
		Version int
		Message []byte
		// Options are for an OptionSigner only.
		Options   keys.SignOptions
		Signature string // "vault:v<N>:…"
		Err       error
	}
	VerifyItem struct {
		Version            int
		Message, Signature []byte // Signature: the body
		Options            keys.SignOptions
		Valid              bool
		Err                error
	}
	HMACItem struct {
		Version int
		Message []byte
		// Algorithm is "" or sha2-256 unless HMACAlgorithmer.
		Algorithm string
		MAC       string // "vault:v<N>:…"
		Err       error
	}
)

// cryptoOf is the crypto of key p, without material yet (open adds it):
// the one place that decides where a key lives.
func (e *Engine) cryptoOf(p *Policy) KeyCrypto {
	if p.Backend == "" {
		return &localCrypto{}
	}
	return &pluginCrypto{e: e, p: p}
}

// openCrypto is p's crypto with its versions ready for use.
func (e *Engine) openCrypto(p *Policy) (KeyCrypto, error) {
	c := e.cryptoOf(p)
	var err error
	switch c := c.(type) {
	case *localCrypto:
		err = c.open(p, p.spec(), func(v *keys.Version) *keys.Version { return v })
	case *pluginCrypto:
		// Used by handle on the backend; only the node-side HMAC keys
		// (see hmacKeyFor) are prepared here.
		c.hmac = &localCrypto{}
		err = c.hmac.open(p, keys.Spec{Type: keys.HMAC}, func(v *keys.Version) *keys.Version {
			if len(v.HMACKey) == 0 {
				return nil
			}
			return &keys.Version{Version: v.Version, CreationTime: v.CreationTime, Secret: v.HMACKey}
		})
	}
	return c, err
}

// localCrypto is the crypto of keys in this process: package keys, one
// ready Handle per version.
type localCrypto struct {
	handles map[int]*keys.Handle
}

var (
	_ KeyCrypto       = (*localCrypto)(nil)
	_ Deriver         = (*localCrypto)(nil)
	_ OptionSigner    = (*localCrypto)(nil)
	_ HMACAlgorithmer = (*localCrypto)(nil)
	_ SeparateHMAC    = (*localCrypto)(nil)
	_ Exporter        = (*localCrypto)(nil)
	_ Importer        = (*localCrypto)(nil)
)

// open prepares a handle with spec for each version of p that material
// gives material (nil: none).
func (c *localCrypto) open(p *Policy, spec keys.Spec, material func(*keys.Version) *keys.Version) error {
	c.handles = make(map[int]*keys.Handle, len(p.Versions))
	if p.destroyed() {
		return nil // no material: every use is refused by state
	}
	for n, v := range p.Versions {
		if v = material(v); v == nil {
			continue
		}
		h, err := keys.NewHandle(spec, v)
		if err != nil {
			c.zero()
			return fmt.Errorf("transit: key %q version %d: %w", p.Name, n, err)
		}
		c.handles[n] = h
	}
	return nil
}

func (c *localCrypto) Name() string   { return Builtin }
func (c *localCrypto) Has(v int) bool { return c.handles[v] != nil }

func (c *localCrypto) zero() {
	for _, h := range c.handles {
		h.Zero()
	}
}

func (c *localCrypto) generate(_ context.Context, e *Engine, p *Policy, n int) error {
	v, err := keys.GenerateVersion(p.Type, n, e.Now().UTC(), p.KeySize)
	if err != nil {
		return err
	}
	p.Versions[n] = v
	return nil
}

// handle is version v's handle; an operation checks Has first, so a
// missing one is the server's mistake.
func (c *localCrypto) handle(v int) (*keys.Handle, error) {
	if h := c.handles[v]; h != nil {
		return h, nil
	}
	return nil, fmt.Errorf("transit: key version %d has no handle", v)
}

func (c *localCrypto) PublicKey(v int) string {
	h := c.handles[v]
	if h == nil {
		return ""
	}
	pub, err := h.PublicKey(nil) // a derived key has none without a context
	if err != nil {
		return ""
	}
	return pub
}

// each runs do on every item that has not failed, with the handle of
// the item's version; at gives the item's version and error.
func each[T any](c *localCrypto, items []T, at func(*T) (int, *error), do func(*keys.Handle, *T) error) error {
	for i := range items {
		v, errp := at(&items[i])
		if *errp != nil {
			continue
		}
		h, err := c.handle(v)
		if err == nil {
			err = do(h, &items[i])
		}
		*errp = err
	}
	return nil
}

func (c *localCrypto) Encrypt(_ context.Context, items []EncryptItem) error {
	return each(c, items, func(it *EncryptItem) (int, *error) { return it.Version, &it.Err },
		func(h *keys.Handle, it *EncryptItem) (err error) {
			it.Ciphertext, err = h.Encrypt(it.Plaintext, it.Options)
			return err
		})
}

func (c *localCrypto) Decrypt(_ context.Context, items []DecryptItem) error {
	return each(c, items, func(it *DecryptItem) (int, *error) { return it.Version, &it.Err },
		func(h *keys.Handle, it *DecryptItem) (err error) {
			it.Plaintext, err = h.Decrypt(it.Ciphertext, it.Options)
			return err
		})
}

func (c *localCrypto) Sign(_ context.Context, items []SignItem) error {
	return each(c, items, func(it *SignItem) (int, *error) { return it.Version, &it.Err },
		func(h *keys.Handle, it *SignItem) (err error) {
			it.Signature, err = h.Sign(it.Message, it.Options)
			return err
		})
}

func (c *localCrypto) Verify(_ context.Context, items []VerifyItem) error {
	return each(c, items, func(it *VerifyItem) (int, *error) { return it.Version, &it.Err },
		func(h *keys.Handle, it *VerifyItem) (err error) {
			it.Valid, err = h.Verify(it.Message, it.Signature, it.Options)
			return err
		})
}

func (c *localCrypto) HMAC(_ context.Context, items []HMACItem) error {
	return each(c, items, func(it *HMACItem) (int, *error) { return it.Version, &it.Err },
		func(h *keys.Handle, it *HMACItem) (err error) {
			it.MAC, err = h.HMAC(it.Message, it.Algorithm)
			return err
		})
}

func (c *localCrypto) DerivedPublicKey(v int, context []byte) (string, error) {
	h, err := c.handle(v)
	if err != nil {
		return "", err
	}
	return h.PublicKey(context)
}

func (c *localCrypto) SignsWithOptions()  {}
func (c *localCrypto) HMACWithAlgorithm() {}

// HMACKeys: every version of a key in this process has its HMAC key
// (for type hmac, the key itself).
func (c *localCrypto) HMACKeys() (KeyCrypto, bool) { return c, true }

func (c *localCrypto) Export(kind string, v int) (string, error) {
	h, err := c.handle(v)
	if err != nil {
		return "", err
	}
	return h.Export(kind)
}

func (c *localCrypto) Versions() []int {
	out := make([]int, 0, len(c.handles))
	for n := range c.handles {
		out = append(out, n)
	}
	return out
}

func (c *localCrypto) CheckImport(p *Policy, v *keys.Version) error { return checkMaterial(p, v) }
