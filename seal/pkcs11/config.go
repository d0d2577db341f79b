package pkcs11

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Mechanism names accepted in Config.Mechanism.
const (
	MechanismAESGCM  = "CKM_AES_GCM"
	MechanismRSAOAEP = "CKM_RSA_PKCS_OAEP"
)

const (
	// DefaultMaxSessions is the session pool size when Config.MaxSessions is 0.
	DefaultMaxSessions = 8
	// maxMaxSessions bounds the pool; real tokens allow far fewer sessions.
	maxMaxSessions = 1024
	// maxLabelLen is the longest key label a blob can record (one length byte).
	maxLabelLen = 255
)

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("pkcs11 seal: invalid configuration")

// Config says which PKCS#11 module, token and key the seal uses.
//
// Config implements fmt.Stringer and fmt.GoStringer so that printing it
// with any verb never shows the PIN.
type Config struct {
	// Lib is the path of the PKCS#11 module (a shared library), for
	// example /usr/lib/softhsm/libsofthsm2.so.
	Lib string
	// Slot selects the token by slot ID. Exactly one of Slot and
	// TokenLabel is set.
	Slot *uint
	// TokenLabel selects the token by its label (CK_TOKEN_INFO.label).
	TokenLabel string
	// PIN is the user (CKU_USER) PIN. It is never logged and never part of
	// an error message.
	PIN string
	// KeyLabel is the CKA_LABEL of the wrapping key (for RSA-OAEP: of both
	// the public and the private key). At most 255 bytes.
	KeyLabel string
	// Mechanism is MechanismAESGCM (the default when empty) or
	// MechanismRSAOAEP.
	Mechanism string
	// GenerateKey makes Open create the key when none has KeyLabel: a
	// sensitive, non-extractable token object.
	GenerateKey bool
	// MaxSessions is the size of the session pool (DefaultMaxSessions
	// when 0): at most this many Wrap/Unwrap calls run at once.
	MaxSessions int
	// OAEPHash is the RSA-OAEP hash and MGF1 hash: "SHA256" (the default
	// when empty) or "SHA1". SHA1 exists for tokens that implement
	// nothing else — SoftHSM 2.6 and older accept only SHA-1 OAEP. Only
	// meaningful with MechanismRSAOAEP.
	OAEPHash string
}

// Validate reports the first problem with c, wrapping ErrConfig. It does
// not touch the module.
func (c Config) Validate() error {
	switch {
	case c.Lib == "":
		return fmt.Errorf("%w: lib (path of the PKCS#11 module) is required", ErrConfig)
	case c.Slot == nil && c.TokenLabel == "":
		return fmt.Errorf("%w: one of slot and token_label is required", ErrConfig)
	case c.Slot != nil && c.TokenLabel != "":
		return fmt.Errorf("%w: slot and token_label are exclusive; set one", ErrConfig)
	case c.PIN == "":
		return fmt.Errorf("%w: pin is required", ErrConfig)
	case c.KeyLabel == "":
		return fmt.Errorf("%w: key_label is required", ErrConfig)
	case len(c.KeyLabel) > maxLabelLen:
		return fmt.Errorf("%w: key_label is %d bytes, at most %d", ErrConfig, len(c.KeyLabel), maxLabelLen)
	case c.MaxSessions < 0 || c.MaxSessions > maxMaxSessions:
		return fmt.Errorf("%w: max_sessions is %d, want 0 (default %d) to %d", ErrConfig, c.MaxSessions, DefaultMaxSessions, maxMaxSessions)
	}
	_, err := mechanismOf(c.Mechanism, c.OAEPHash)
	return err
}

// withDefaults fills in the defaults Validate allows to be empty.
func (c Config) withDefaults() Config {
	if c.Mechanism == "" {
		c.Mechanism = MechanismAESGCM
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	return c
}

// String describes c without its PIN.
func (c Config) String() string {
	tok := "token_label=" + strconv.Quote(c.TokenLabel)
	if c.Slot != nil {
		tok = "slot=" + strconv.FormatUint(uint64(*c.Slot), 10)
	}
	pin := "<empty>"
	if c.PIN != "" {
		pin = "<redacted>"
	}
	oaep := ""
	if c.OAEPHash != "" {
		oaep = " oaep_hash=" + strconv.Quote(c.OAEPHash)
	}
	return fmt.Sprintf("pkcs11.Config{lib=%q %s pin=%s key_label=%q mechanism=%q%s generate_key=%t max_sessions=%d}",
		c.Lib, tok, pin, c.KeyLabel, c.Mechanism, oaep, c.GenerateKey, c.MaxSessions)
}

// GoString is String, so %#v does not show the PIN either.
func (c Config) GoString() string { return c.String() }

// Format makes every fmt verb (%d and %x included) print String.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// mechanism is the blob's mechanism byte: a PKCS#11 mechanism with all
// its parameters fixed.
type mechanism byte

const (
	mechAESGCM      mechanism = 1 // CKM_AES_GCM, 96-bit IV, 128-bit tag
	mechRSAOAEP     mechanism = 2 // CKM_RSA_PKCS_OAEP, SHA-256, MGF1-SHA-256, no label
	mechRSAOAEPSHA1 mechanism = 3 // CKM_RSA_PKCS_OAEP, SHA-1, MGF1-SHA-1, no label
)

func mechanismOf(name, oaepHash string) (mechanism, error) {
	switch name {
	case "", MechanismAESGCM:
		if oaepHash != "" {
			return 0, fmt.Errorf("%w: oaep_hash applies to %s only", ErrConfig, MechanismRSAOAEP)
		}
		return mechAESGCM, nil
	case MechanismRSAOAEP:
		switch oaepHash {
		case "", "SHA256":
			return mechRSAOAEP, nil
		case "SHA1":
			return mechRSAOAEPSHA1, nil
		}
		return 0, fmt.Errorf("%w: oaep_hash %q is not supported (want SHA256 or SHA1)", ErrConfig, oaepHash)
	}
	return 0, fmt.Errorf("%w: mechanism %q is not supported (want %s or %s)", ErrConfig, name, MechanismAESGCM, MechanismRSAOAEP)
}

func (m mechanism) isRSA() bool { return m == mechRSAOAEP || m == mechRSAOAEPSHA1 }

func (m mechanism) valid() bool { return m == mechAESGCM || m.isRSA() }

func (m mechanism) String() string {
	switch m {
	case mechAESGCM:
		return MechanismAESGCM
	case mechRSAOAEP:
		return MechanismRSAOAEP + "/SHA256"
	case mechRSAOAEPSHA1:
		return MechanismRSAOAEP + "/SHA1"
	}
	return fmt.Sprintf("mechanism(%d)", byte(m))
}
