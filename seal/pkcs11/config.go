package pkcs11

import (
	"fmt"
	"io"
	"strconv"

	ipk "github.com/keyraft/keyraft/internal/pkcs11"
)

// Mechanism names accepted in Config.Mechanism.
const (
	MechanismAESGCM  = "CKM_AES_GCM"
	MechanismRSAOAEP = "CKM_RSA_PKCS_OAEP"
)

const (
	// DefaultMaxSessions is the session pool size when Config.MaxSessions is 0.
	DefaultMaxSessions = ipk.DefaultMaxSessions
	// maxLabelLen is the longest key label a blob can record (one length byte).
	maxLabelLen = 255
)

var (
	// ErrConfig is wrapped by every error Validate returns.
	ErrConfig = ipk.ErrConfig
	// ErrClosed is returned by every method of a Seal after Close.
	ErrClosed = ipk.ErrClosed
	// errClosed is what Wrap and Unwrap say after Close.
	errClosed = fmt.Errorf("pkcs11 seal: the seal is %w", ErrClosed)
)

// dialect words the shared PKCS#11 code's errors for the seal: the
// fields as the seal "pkcs11" block spells them.
var dialect = &ipk.Dialect{Name: "pkcs11 seal", Lib: "lib", Slot: "slot", TokenLabel: "token_label", PIN: "pin", MaxSessions: "max_sessions"}

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
	if err := c.base().Validate(); err != nil {
		return err
	}
	switch {
	case c.KeyLabel == "":
		return fmt.Errorf("pkcs11 seal: %w: key_label is required", ErrConfig)
	case len(c.KeyLabel) > maxLabelLen:
		return fmt.Errorf("pkcs11 seal: %w: key_label is %d bytes, at most %d", ErrConfig, len(c.KeyLabel), maxLabelLen)
	}
	_, err := mechanismOf(c.Mechanism, c.OAEPHash)
	return err
}

// base is the token part of c, for internal/pkcs11.
func (c Config) base() ipk.Config {
	return ipk.Config{Lib: c.Lib, Slot: c.Slot, TokenLabel: c.TokenLabel, PIN: c.PIN, MaxSessions: c.MaxSessions, Dialect: dialect}
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
	oaep := ""
	if c.OAEPHash != "" {
		oaep = " oaep_hash=" + strconv.Quote(c.OAEPHash)
	}
	return fmt.Sprintf("pkcs11.Config{%s key_label=%q mechanism=%q%s generate_key=%t max_sessions=%d}",
		c.base().String(), c.KeyLabel, c.Mechanism, oaep, c.GenerateKey, c.MaxSessions)
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
			return 0, fmt.Errorf("pkcs11 seal: %w: oaep_hash applies to %s only", ErrConfig, MechanismRSAOAEP)
		}
		return mechAESGCM, nil
	case MechanismRSAOAEP:
		switch oaepHash {
		case "", "SHA256":
			return mechRSAOAEP, nil
		case "SHA1":
			return mechRSAOAEPSHA1, nil
		}
		return 0, fmt.Errorf("pkcs11 seal: %w: oaep_hash %q is not supported (want SHA256 or SHA1)", ErrConfig, oaepHash)
	}
	return 0, fmt.Errorf("pkcs11 seal: %w: mechanism %q is not supported (want %s or %s)", ErrConfig, name, MechanismAESGCM, MechanismRSAOAEP)
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
