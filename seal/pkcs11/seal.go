package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	cryptoki "github.com/miekg/pkcs11"

	ipk "github.com/keyraft/keyraft/internal/pkcs11"
	"github.com/keyraft/keyraft/seal"
)

// Sentinel errors of Open. Errors wrap them with details (never the PIN);
// test with errors.Is. ErrModule, ErrToken and ErrPIN are those of
// internal/pkcs11, which loads the module and logs in for the seal and
// the crypto plugin alike.
var (
	// ErrModule: the PKCS#11 library cannot be loaded or initialized.
	ErrModule = ipk.ErrModule
	// ErrToken: no initialized token in the configured slot, or no token
	// (or more than one) with the configured label.
	ErrToken = ipk.ErrToken
	// ErrPIN: the token rejected the PIN, or the PIN is locked.
	ErrPIN = ipk.ErrPIN
	// ErrKeyNotFound: no key has the configured label and GenerateKey is
	// false (or, for RSA-OAEP, only half of the key pair exists).
	ErrKeyNotFound = errors.New("pkcs11 seal: wrapping key not found")
	// ErrKeyAmbiguous: two or more keys of the same class share the label.
	ErrKeyAmbiguous = errors.New("pkcs11 seal: wrapping key label is ambiguous")
	// ErrMechanism: the token refuses the configured mechanism or its
	// parameters with the key (Open tries an encryption and a decryption).
	ErrMechanism = errors.New("pkcs11 seal: the token refuses the mechanism")
)

const (
	aesKeyBytes = 32
	rsaBits     = 3072
)

// probeAAD is the AES-GCM AAD of Open's and Healthy's test encryption; it
// differs from gcmAADPrefix so a probe can never pass for a seal blob.
var probeAAD = []byte("keyraft-pkcs11-probe")

var _ seal.Seal = (*Seal)(nil)

// Seal is the PKCS#11 seal. It is safe for concurrent use; at most
// Config.MaxSessions operations run at once, each on a session of its own.
type Seal struct {
	tok      *ipk.Token // module, login and session pool
	keyLabel string
	mech     mechanism

	keyMu sync.RWMutex
	keys  keyHandles
}

type keyHandles struct {
	secret     cryptoki.ObjectHandle // AES-GCM
	pub, priv  cryptoki.ObjectHandle // RSA-OAEP
	modulusLen int                   // RSA-OAEP, bytes
}

// Open loads the module (or shares it with other open Seals), finds the
// token, logs in (once per token per process; sessions share the login),
// finds the key — or generates it when cfg.GenerateKey is set — and
// returns a ready Seal, after a test encryption and decryption with the
// key. Errors wrap ErrConfig, ErrModule, ErrToken, ErrPIN,
// ErrKeyNotFound, ErrKeyAmbiguous or ErrMechanism.
func Open(cfg Config) (*Seal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	mech, _ := mechanismOf(cfg.Mechanism, cfg.OAEPHash)
	tok, err := ipk.Open(cfg.base(), false)
	if err != nil {
		return nil, err
	}
	s := &Seal{tok: tok, keyLabel: cfg.KeyLabel, mech: mech}
	x, err := tok.Get(context.Background())
	if err == nil {
		s.keys, err = s.prepare(x.H, cfg)
		tok.Put(x)
	}
	if err != nil {
		_ = tok.Close()
		return nil, err
	}
	return s, nil
}

// prepare finds the key — or generates it when cfg.GenerateKey is set —
// and checks with a test encryption and decryption that the token lets
// the key do the mechanism.
func (s *Seal) prepare(sh cryptoki.SessionHandle, cfg Config) (keyHandles, error) {
	mech, tokLabel := s.mech, s.tok.Label
	keys, found, err := s.findKeys(sh)
	if err != nil {
		return keys, err
	}
	if !found {
		if !cfg.GenerateKey {
			return keys, fmt.Errorf("%w: no %s key labelled %q on token %q (set generate_key to create one)", ErrKeyNotFound, mech, cfg.KeyLabel, tokLabel)
		}
		if err := s.generate(); err != nil {
			return keys, err
		}
		if keys, found, err = s.findKeys(sh); err != nil {
			return keys, err
		}
		if !found {
			return keys, fmt.Errorf("%w: generated key labelled %q is not found on token %q", ErrKeyNotFound, cfg.KeyLabel, tokLabel)
		}
	}
	if err := s.roundTrip(sh, keys); err != nil {
		if ipk.IsCode(err, cryptoki.CKR_MECHANISM_INVALID) || ipk.IsCode(err, cryptoki.CKR_MECHANISM_PARAM_INVALID) ||
			ipk.IsCode(err, cryptoki.CKR_ARGUMENTS_BAD) || ipk.IsCode(err, cryptoki.CKR_KEY_TYPE_INCONSISTENT) ||
			ipk.IsCode(err, cryptoki.CKR_KEY_FUNCTION_NOT_PERMITTED) {
			hint := ""
			if mech == mechRSAOAEP {
				hint = " (SoftHSM 2.6 and older implement RSA-OAEP with SHA-1 only: set oaep_hash = \"SHA1\", or use " + MechanismAESGCM + ")"
			}
			return keys, fmt.Errorf("%w: %s with key %q on token %q: %w%s", ErrMechanism, mech, cfg.KeyLabel, tokLabel, err, hint)
		}
		return keys, fmt.Errorf("pkcs11 seal: test encryption with key %q on token %q: %w", cfg.KeyLabel, tokLabel, err)
	}
	return keys, nil
}

// findOne returns the only object of class labelled s.keyLabel, or found
// false when there is none.
func (s *Seal) findOne(sh cryptoki.SessionHandle, class uint) (h cryptoki.ObjectHandle, found bool, err error) {
	objs, err := ipk.FindObjects(s.tok.Ctx, sh, []*cryptoki.Attribute{
		cryptoki.NewAttribute(cryptoki.CKA_CLASS, class),
		cryptoki.NewAttribute(cryptoki.CKA_LABEL, s.keyLabel),
	}, 2)
	if err != nil {
		return 0, false, fmt.Errorf("pkcs11 seal: %w", err)
	}
	switch len(objs) {
	case 0:
		return 0, false, nil
	case 1:
		return objs[0], true, nil
	}
	return 0, false, fmt.Errorf("%w: more than one %s labelled %q on token %q; delete or relabel all but one",
		ErrKeyAmbiguous, className(class), s.keyLabel, s.tok.Label)
}

func className(class uint) string {
	switch class {
	case cryptoki.CKO_SECRET_KEY:
		return "secret key"
	case cryptoki.CKO_PUBLIC_KEY:
		return "public key"
	case cryptoki.CKO_PRIVATE_KEY:
		return "private key"
	}
	return "object"
}

// findKeys looks the key (pair) up. found is false, with no error, only
// when no key of the mechanism's classes carries the label.
func (s *Seal) findKeys(sh cryptoki.SessionHandle) (k keyHandles, found bool, err error) {
	switch s.mech {
	case mechAESGCM:
		h, ok, err := s.findOne(sh, cryptoki.CKO_SECRET_KEY)
		if err != nil || !ok {
			return k, false, err
		}
		if err := s.checkKeyType(sh, h, cryptoki.CKK_AES, "AES"); err != nil {
			return k, false, err
		}
		k.secret = h
		return k, true, nil
	default: // RSA-OAEP
		priv, okPriv, err := s.findOne(sh, cryptoki.CKO_PRIVATE_KEY)
		if err != nil {
			return k, false, err
		}
		pub, okPub, err := s.findOne(sh, cryptoki.CKO_PUBLIC_KEY)
		if err != nil {
			return k, false, err
		}
		switch {
		case !okPriv && !okPub:
			return k, false, nil
		case !okPriv:
			return k, false, fmt.Errorf("%w: token %q has a public key labelled %q but no private key", ErrKeyNotFound, s.tok.Label, s.keyLabel)
		case !okPub:
			return k, false, fmt.Errorf("%w: token %q has a private key labelled %q but no public key (keyraft encrypts with the public key object)", ErrKeyNotFound, s.tok.Label, s.keyLabel)
		}
		if err := s.checkKeyType(sh, priv, cryptoki.CKK_RSA, "RSA"); err != nil {
			return k, false, err
		}
		attrs, err := s.tok.Ctx.GetAttributeValue(sh, pub, []*cryptoki.Attribute{
			cryptoki.NewAttribute(cryptoki.CKA_KEY_TYPE, nil),
			cryptoki.NewAttribute(cryptoki.CKA_MODULUS, nil),
		})
		if err != nil {
			return k, false, fmt.Errorf("pkcs11 seal: reading the public key labelled %q: %w", s.keyLabel, err)
		}
		if t, _ := attrUint(attrs[0]); t != cryptoki.CKK_RSA {
			return k, false, fmt.Errorf("%w: the public key labelled %q on token %q is not an RSA key", ErrKeyNotFound, s.keyLabel, s.tok.Label)
		}
		n := len(attrs[1].Value)
		if n < minRSACiphertext || n > maxRSACiphertext {
			return k, false, fmt.Errorf("pkcs11 seal: RSA key labelled %q has a %d-bit modulus; want 1024 to 8192 bits (3072 recommended)", s.keyLabel, 8*n)
		}
		k.priv, k.pub, k.modulusLen = priv, pub, n
		return k, true, nil
	}
}

func (s *Seal) checkKeyType(sh cryptoki.SessionHandle, h cryptoki.ObjectHandle, want uint, name string) error {
	attrs, err := s.tok.Ctx.GetAttributeValue(sh, h, []*cryptoki.Attribute{cryptoki.NewAttribute(cryptoki.CKA_KEY_TYPE, nil)})
	if err != nil {
		return fmt.Errorf("pkcs11 seal: reading the key labelled %q: %w", s.keyLabel, err)
	}
	if t, ok := attrUint(attrs[0]); !ok || t != want {
		return fmt.Errorf("%w: the key labelled %q on token %q is not an %s key (CKA_KEY_TYPE 0x%x)", ErrKeyNotFound, s.keyLabel, s.tok.Label, name, t)
	}
	return nil
}

// attrUint decodes a CK_ULONG attribute value (native byte order).
func attrUint(a *cryptoki.Attribute) (uint, bool) {
	switch len(a.Value) {
	case 8:
		return uint(binary.NativeEndian.Uint64(a.Value)), true
	case 4:
		return uint(binary.NativeEndian.Uint32(a.Value)), true
	}
	return 0, false
}

// generate creates the key (pair) as sensitive, non-extractable token
// objects, on a read/write session of its own.
func (s *Seal) generate() error {
	c := s.tok.Ctx
	sh, err := c.OpenSession(s.tok.Slot, cryptoki.CKF_SERIAL_SESSION|cryptoki.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("pkcs11 seal: C_OpenSession (read/write, to generate the key): %w", err)
	}
	defer func() { _ = c.CloseSession(sh) }()
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("pkcs11 seal: reading randomness: %w", err)
	}
	attr := cryptoki.NewAttribute
	switch s.mech {
	case mechAESGCM:
		tmpl := []*cryptoki.Attribute{
			attr(cryptoki.CKA_CLASS, cryptoki.CKO_SECRET_KEY),
			attr(cryptoki.CKA_KEY_TYPE, cryptoki.CKK_AES),
			attr(cryptoki.CKA_VALUE_LEN, aesKeyBytes),
			attr(cryptoki.CKA_TOKEN, true),
			attr(cryptoki.CKA_PRIVATE, true),
			attr(cryptoki.CKA_SENSITIVE, true),
			attr(cryptoki.CKA_EXTRACTABLE, false),
			attr(cryptoki.CKA_ENCRYPT, true),
			attr(cryptoki.CKA_DECRYPT, true),
			attr(cryptoki.CKA_WRAP, false),
			attr(cryptoki.CKA_UNWRAP, false),
			attr(cryptoki.CKA_SIGN, false),
			attr(cryptoki.CKA_VERIFY, false),
			attr(cryptoki.CKA_DERIVE, false),
			attr(cryptoki.CKA_LABEL, s.keyLabel),
			attr(cryptoki.CKA_ID, id),
		}
		mech := []*cryptoki.Mechanism{cryptoki.NewMechanism(cryptoki.CKM_AES_KEY_GEN, nil)}
		if _, err := c.GenerateKey(sh, mech, tmpl); err != nil {
			return fmt.Errorf("pkcs11 seal: generating AES-256 key %q on token %q: %w", s.keyLabel, s.tok.Label, err)
		}
	default: // RSA-OAEP
		pub := []*cryptoki.Attribute{
			attr(cryptoki.CKA_CLASS, cryptoki.CKO_PUBLIC_KEY),
			attr(cryptoki.CKA_KEY_TYPE, cryptoki.CKK_RSA),
			attr(cryptoki.CKA_TOKEN, true),
			attr(cryptoki.CKA_PRIVATE, false),
			attr(cryptoki.CKA_ENCRYPT, true),
			attr(cryptoki.CKA_VERIFY, false),
			attr(cryptoki.CKA_WRAP, false),
			attr(cryptoki.CKA_MODULUS_BITS, rsaBits),
			attr(cryptoki.CKA_PUBLIC_EXPONENT, []byte{0x01, 0x00, 0x01}),
			attr(cryptoki.CKA_LABEL, s.keyLabel),
			attr(cryptoki.CKA_ID, id),
		}
		priv := []*cryptoki.Attribute{
			attr(cryptoki.CKA_CLASS, cryptoki.CKO_PRIVATE_KEY),
			attr(cryptoki.CKA_KEY_TYPE, cryptoki.CKK_RSA),
			attr(cryptoki.CKA_TOKEN, true),
			attr(cryptoki.CKA_PRIVATE, true),
			attr(cryptoki.CKA_SENSITIVE, true),
			attr(cryptoki.CKA_EXTRACTABLE, false),
			attr(cryptoki.CKA_DECRYPT, true),
			attr(cryptoki.CKA_SIGN, false),
			attr(cryptoki.CKA_UNWRAP, false),
			attr(cryptoki.CKA_LABEL, s.keyLabel),
			attr(cryptoki.CKA_ID, id),
		}
		mech := []*cryptoki.Mechanism{cryptoki.NewMechanism(cryptoki.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
		if _, _, err := c.GenerateKeyPair(sh, mech, pub, priv); err != nil {
			return fmt.Errorf("pkcs11 seal: generating RSA-%d key pair %q on token %q: %w", rsaBits, s.keyLabel, s.tok.Label, err)
		}
	}
	return nil
}

// Type implements seal.Seal.
func (s *Seal) Type() string { return "pkcs11" }

// maxWrap is the longest plaintext Wrap accepts: OAEP costs twice the
// hash length plus 2 bytes of the modulus.
func (s *Seal) maxWrap(k keyHandles) int {
	switch s.mech {
	case mechRSAOAEP:
		return k.modulusLen - 2*32 - 2
	case mechRSAOAEPSHA1:
		return k.modulusLen - 2*20 - 2
	}
	return maxPlaintext
}

// Wrap implements seal.Seal: it encrypts rootKey inside the HSM and
// returns a self-describing blob (see the package documentation).
func (s *Seal) Wrap(ctx context.Context, rootKey []byte) ([]byte, error) {
	if s.tok.Closed() {
		return nil, errClosed
	}
	if limit := s.maxWrap(s.loadKeys()); len(rootKey) == 0 || len(rootKey) > limit {
		return nil, fmt.Errorf("pkcs11 seal: wrap: plaintext is %d bytes, want 1 to %d", len(rootKey), limit)
	}
	b := &blob{mech: s.mech, label: s.keyLabel}
	err := s.do(ctx, func(sh cryptoki.SessionHandle, k keyHandles) error {
		switch s.mech {
		case mechAESGCM:
			iv := make([]byte, gcmIVSize)
			if _, err := rand.Read(iv); err != nil {
				return fmt.Errorf("pkcs11 seal: reading randomness: %w", err)
			}
			ct, used, err := ipk.GCMEncrypt(s.tok.Ctx, sh, k.secret, iv, b.aad(), rootKey)
			if err != nil {
				return err
			}
			b.iv, b.ct = used, ct
		default:
			ct, err := oaepEncrypt(s.tok.Ctx, sh, s.mech, k.pub, rootKey)
			if err != nil {
				return err
			}
			if len(ct) != k.modulusLen {
				return fmt.Errorf("pkcs11 seal: RSA-OAEP ciphertext is %d bytes, want the modulus length %d", len(ct), k.modulusLen)
			}
			b.ct = ct
		}
		return nil
	})
	if err != nil {
		return nil, opError("wrap", err)
	}
	return b.marshal(), nil
}

// Unwrap implements seal.Seal. Blobs that are malformed wrap ErrBlob;
// blobs made by another key, another mechanism or with edited bytes wrap
// seal.ErrDecrypt (ErrBlob does too).
func (s *Seal) Unwrap(ctx context.Context, data []byte) ([]byte, error) {
	if s.tok.Closed() {
		return nil, errClosed
	}
	b, err := parseBlob(data)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 seal: unwrap: %w", err)
	}
	if b.mech != s.mech || b.label != s.keyLabel {
		return nil, fmt.Errorf("pkcs11 seal: unwrap: %w: blob was wrapped by %s key %q; this seal uses %s key %q",
			seal.ErrDecrypt, b.mech, b.label, s.mech, s.keyLabel)
	}
	var pt []byte
	err = s.do(ctx, func(sh cryptoki.SessionHandle, k keyHandles) error {
		var err error
		switch s.mech {
		case mechAESGCM:
			pt, err = gcmDecrypt(s.tok.Ctx, sh, k.secret, b.iv, b.aad(), b.ct)
		default:
			if len(b.ct) != k.modulusLen {
				return fmt.Errorf("%w: RSA-OAEP ciphertext is %d bytes, the key's modulus %d", ErrBlob, len(b.ct), k.modulusLen)
			}
			pt, err = oaepDecrypt(s.tok.Ctx, sh, s.mech, k.priv, b.ct)
		}
		return s.classifyDecrypt(sh, k, err)
	})
	if err != nil {
		return nil, opError("unwrap", err)
	}
	return pt, nil
}

// classifyDecrypt turns a C_Decrypt failure that the token did not
// report as a bad ciphertext (SoftHSM says CKR_GENERAL_ERROR for a failed
// GCM tag check or bad OAEP padding) into seal.ErrDecrypt when a test
// encryption and decryption on the same session and key succeed: the
// token works, so the ciphertext was at fault. Otherwise the error stays
// a token error.
func (s *Seal) classifyDecrypt(sh cryptoki.SessionHandle, k keyHandles, err error) error {
	var df *ipk.DecryptError
	if err == nil || !errors.As(err, &df) || errors.Is(err, seal.ErrDecrypt) || ipk.SessionLost(err) || ipk.ObjectLost(err) {
		return err
	}
	if perr := s.roundTrip(sh, k); perr != nil {
		return fmt.Errorf("%w (and a test encryption failed too: %w)", err, perr)
	}
	return fmt.Errorf("%w: the token rejected the ciphertext: %w", seal.ErrDecrypt, err)
}

// roundTrip encrypts and decrypts 16 bytes with the key on session sh.
func (s *Seal) roundTrip(sh cryptoki.SessionHandle, k keyHandles) error {
	probe := make([]byte, 16)
	if _, err := rand.Read(probe); err != nil {
		return err
	}
	var pt []byte
	c := s.tok.Ctx
	switch s.mech {
	case mechAESGCM:
		iv := make([]byte, gcmIVSize)
		if _, err := rand.Read(iv); err != nil {
			return err
		}
		ct, used, err := ipk.GCMEncrypt(c, sh, k.secret, iv, probeAAD, probe)
		if err != nil {
			return err
		}
		if pt, err = gcmDecrypt(c, sh, k.secret, used, probeAAD, ct); err != nil {
			return err
		}
	default:
		ct, err := oaepEncrypt(c, sh, s.mech, k.pub, probe)
		if err != nil {
			return err
		}
		if pt, err = oaepDecrypt(c, sh, s.mech, k.priv, ct); err != nil {
			return err
		}
	}
	if !bytes.Equal(pt, probe) {
		return errors.New("test decryption returned other bytes than were encrypted")
	}
	return nil
}

// Healthy is a cheap end-to-end check for health reporting: it borrows a
// session, checks that it is logged in, and encrypts and decrypts 16
// bytes with the seal's key (an AES-GCM round trip costs well under a
// millisecond on SoftHSM; RSA-OAEP adds one private-key operation). A
// degraded or unplugged HSM fails here. Lost sessions are replaced as in
// Wrap.
func (s *Seal) Healthy(ctx context.Context) error {
	err := s.do(ctx, func(sh cryptoki.SessionHandle, k keyHandles) error {
		info, err := s.tok.Ctx.GetSessionInfo(sh)
		if err != nil {
			return err
		}
		if info.State != cryptoki.CKS_RO_USER_FUNCTIONS && info.State != cryptoki.CKS_RW_USER_FUNCTIONS {
			return cryptoki.Error(cryptoki.CKR_USER_NOT_LOGGED_IN)
		}
		return s.roundTrip(sh, k)
	})
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("pkcs11 seal: health check (token %q, key %q): %w", s.tok.Label, s.keyLabel, err)
	}
	return nil
}

// opError prefixes an operation's error, except ErrClosed, which says
// all there is to say.
func opError(op string, err error) error {
	if errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("pkcs11 seal: %s: %w", op, err)
}

// Close ends every session, logs out (when no other Seal of the process
// still uses the token's login), and finalizes and unloads the module
// (when no other Seal uses it). It waits for running operations. It is
// idempotent: later calls return the first call's result.
func (s *Seal) Close() error { return s.tok.Close() }

// String describes the seal (never the PIN).
func (s *Seal) String() string {
	return fmt.Sprintf("pkcs11 seal (module %s, token %q, %s key %q)", s.tok.Path, s.tok.Label, s.mech, s.keyLabel)
}

// Format makes every fmt verb print String, so that no verb can reach the
// unexported fields.
func (s *Seal) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

func (s *Seal) loadKeys() keyHandles {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	return s.keys
}

// do runs fn on a borrowed session and recovers from a token that lost
// state under it: a session fn finds lost is closed and fn runs again on
// another (as many times as the pool has sessions, since they are usually
// lost together); key handles that went stale are looked up again once.
// SoftHSM, for one, gives private objects new handles after the login
// ended with the last session.
func (s *Seal) do(ctx context.Context, fn func(cryptoki.SessionHandle, keyHandles) error) error {
	sessionRetries, keyRetries := s.tok.Size(), 1
	for {
		x, err := s.tok.Get(ctx)
		if err != nil {
			return err
		}
		err = fn(x.H, s.loadKeys())
		switch {
		case err == nil:
			s.tok.Put(x)
			return nil
		case ipk.SessionLost(err):
			s.tok.Discard(x)
			if sessionRetries--; sessionRetries < 0 {
				return err
			}
		case ipk.ObjectLost(err) && keyRetries > 0:
			keyRetries--
			k, found, ferr := s.findKeys(x.H)
			s.tok.Put(x)
			if ferr != nil {
				return errors.Join(err, ferr)
			}
			if !found {
				return fmt.Errorf("%w: key %q vanished from token %q: %w", ErrKeyNotFound, s.keyLabel, s.tok.Label, err)
			}
			s.keyMu.Lock()
			s.keys = k
			s.keyMu.Unlock()
		default:
			s.tok.Put(x)
			return err
		}
	}
}
