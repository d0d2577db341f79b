package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PKCS11Seal is the body of a seal "pkcs11" block: which PKCS#11 module,
// token and key wrap the root key, in the shape of Vault's pkcs11 seal.
// Validate checks it without loading the module or reading any file.
type PKCS11Seal struct {
	// Lib is the path of the PKCS#11 module, a shared library such as
	// /usr/lib/softhsm/libsofthsm2.so; required.
	Lib string
	// Slot selects the token by slot ID; nil when not set. The file writes
	// it as a decimal number, usually in quotes as Vault does (slot =
	// "0"). Exactly one of Slot and TokenLabel is set.
	Slot *uint
	// TokenLabel selects the token by its label; "" when not set.
	TokenLabel string
	// PIN is the user PIN when the file gives it; "" when not set. Use
	// ResolvePIN to get the PIN from wherever it is given.
	PIN Secret
	// PINFile is the path of a file that holds the user PIN; "" when not
	// set. At most one of PIN and PINFile is set; Validate does not read
	// the file.
	PINFile string
	// KeyLabel is the label (CKA_LABEL) of the key that wraps the root
	// key; required.
	KeyLabel string
	// Mechanism is how the key wraps: "CKM_AES_GCM" (the default) or
	// "CKM_RSA_PKCS_OAEP". Validate turns Vault's numeric forms ("0x1087",
	// "0x0009") and other spellings into these names.
	Mechanism string
	// GenerateKey makes the server create the key in the token when no key
	// has KeyLabel. Default false.
	GenerateKey bool
}

// Secret is a string that printing does not show: fmt with any verb,
// and encoders that use encoding.TextMarshaler, see "(redacted)" instead
// (or "" when it is empty). Convert it with string() to use it.
type Secret string

// String returns "(redacted)", or "" for an empty Secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "(redacted)"
}

// GoString is String, so that %#v does not show the secret either.
func (s Secret) GoString() string { return s.String() }

// MarshalText is String, so that JSON and other text encodings do not
// show the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Environment variables ResolvePIN reads, in order.
const (
	// EnvHSMPIN holds the PKCS#11 user PIN when the file has neither pin
	// nor pin_file.
	EnvHSMPIN = "KEYRAFT_HSM_PIN"
	// EnvVaultHSMPIN is Vault's name for EnvHSMPIN, read when EnvHSMPIN is
	// not set.
	EnvVaultHSMPIN = "VAULT_HSM_PIN"
)

// ResolvePIN returns the user PIN from the first place that gives one: pin
// in the file, the file named by pin_file (without one trailing newline),
// the environment variable KEYRAFT_HSM_PIN, then VAULT_HSM_PIN. An empty
// value counts as not set. getenv and readFile default to os.Getenv and
// os.ReadFile when nil. The error wraps ErrInvalid, or is the error of
// readFile wrapped; it never contains the PIN.
func (s *PKCS11Seal) ResolvePIN(getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	if s.PIN != "" {
		return string(s.PIN), nil
	}
	if s.PINFile != "" {
		b, err := readFile(s.PINFile)
		if err != nil {
			return "", fmt.Errorf(`seal "pkcs11": reading pin_file: %w`, err)
		}
		pin := string(b)
		if strings.HasSuffix(pin, "\n") {
			pin = strings.TrimSuffix(strings.TrimSuffix(pin, "\n"), "\r")
		}
		if pin == "" {
			return "", invalid("", `seal "pkcs11": pin_file %s is empty`, s.PINFile)
		}
		return pin, nil
	}
	for _, name := range []string{EnvHSMPIN, EnvVaultHSMPIN} {
		if pin := getenv(name); pin != "" {
			return pin, nil
		}
	}
	return "", invalid("", `seal "pkcs11": no PIN; set pin or pin_file in the seal block, or %s or %s in the environment`, EnvHSMPIN, EnvVaultHSMPIN)
}

// Mechanisms a pkcs11 seal can use, by name and by PKCS#11 number.
var mechanisms = []struct {
	name string
	num  uint64
}{
	{"CKM_AES_GCM", 0x1087},
	{"CKM_RSA_PKCS_OAEP", 0x0009},
}

// mechanismName returns the name of the mechanism m stands for: a name in
// any case, or a number in hex ("0x1087") or decimal ("4231").
func mechanismName(m string) (string, bool) {
	var num uint64
	var err error
	switch {
	case len(m) > 2 && (m[:2] == "0x" || m[:2] == "0X"):
		num, err = strconv.ParseUint(m[2:], 16, 64)
	case m != "" && m[0] >= '0' && m[0] <= '9':
		num, err = strconv.ParseUint(m, 10, 64)
	default:
		for _, k := range mechanisms {
			if strings.EqualFold(m, k.name) {
				return k.name, true
			}
		}
		return "", false
	}
	if err != nil {
		return "", false
	}
	for _, k := range mechanisms {
		if num == k.num {
			return k.name, true
		}
	}
	return "", false
}

func checkSealType(field, t string) error {
	switch t {
	case "shamir", "pkcs11":
		return nil
	default:
		return unsupported(field+".type", `seal type %q is not supported; use "shamir" or "pkcs11"`, t)
	}
}

// validate checks s and fills in its defaults. field names s in errors
// ("seal", "old_seal"), name in messages.
func (s *Seal) validate(field, name string) error {
	if s.Type == "" {
		s.Type = "shamir"
	}
	if err := checkSealType(field, s.Type); err != nil {
		return err
	}
	name = fmt.Sprintf("%s %q", name, s.Type)
	switch {
	case s.Type == "shamir" && s.PKCS11 != nil:
		return invalid(field, "%s has pkcs11 settings; its type must be \"pkcs11\"", name)
	case s.Type == "pkcs11" && s.PKCS11 == nil:
		return new(PKCS11Seal).validate(field, name)
	case s.Type == "pkcs11":
		return s.PKCS11.validate(field, name)
	}
	return nil
}

// validate checks p and fills in its defaults; field and name as for
// Seal.validate.
func (p *PKCS11Seal) validate(field, name string) error {
	switch {
	case p.Lib == "":
		return invalid(field, "%s: lib is required: the path of the PKCS#11 module, such as /usr/lib/softhsm/libsofthsm2.so", name)
	case p.Slot == nil && p.TokenLabel == "":
		return invalid(field, "%s: slot or token_label is required to choose the token", name)
	case p.Slot != nil && p.TokenLabel != "":
		return invalid(field+".token_label", "%s: slot and token_label both choose the token; set only one of them", name)
	case p.PIN != "" && p.PINFile != "":
		return invalid(field+".pin_file", "%s: pin and pin_file both give the PIN; set only one of them", name)
	case p.KeyLabel == "":
		return invalid(field, "%s: key_label is required", name)
	}
	if p.Mechanism == "" {
		p.Mechanism = "CKM_AES_GCM"
	}
	m, ok := mechanismName(p.Mechanism)
	if !ok {
		return unsupported(field+".mechanism", "%s: mechanism %q is not supported; use CKM_AES_GCM (0x1087) or CKM_RSA_PKCS_OAEP (0x0009)", name, shorten(p.Mechanism))
	}
	p.Mechanism = m
	return nil
}

// validateSeals checks the active seal and the old one of a migration, and
// fills in their defaults.
func (c *Config) validateSeals() error {
	if err := c.Seal.validate("seal", "seal"); err != nil {
		return err
	}
	if c.OldSeal == nil {
		return nil
	}
	if err := c.OldSeal.validate("old_seal", "disabled seal"); err != nil {
		return err
	}
	if c.OldSeal.Type == "shamir" && c.Seal.Type == "shamir" {
		return invalid("old_seal", `disabled seal "shamir": migrating from shamir to shamir changes nothing; remove the disabled seal block`)
	}
	return nil
}
