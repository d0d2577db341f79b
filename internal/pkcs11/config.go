package pkcs11

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const (
	// DefaultMaxSessions is the session pool size when Config.MaxSessions is 0.
	DefaultMaxSessions = 8
	// MaxMaxSessions bounds the pool; real tokens allow far fewer sessions.
	MaxMaxSessions = 1024
	// MaxPINFile is the largest PIN file ReadPIN reads.
	MaxPINFile = 4096
)

// Sentinel errors of Validate, ReadPIN, Open, Get and Close, whose
// errors start with Dialect.Name. The sentinels' own messages are bare so
// that the name in front says whose error it is; seal/pkcs11 and
// plugins/pkcs11 export them under the same names.
var (
	// ErrConfig: Validate or ReadPIN refused the configuration.
	ErrConfig = errors.New("invalid configuration")
	// ErrModule: the PKCS#11 library cannot be loaded or initialized.
	ErrModule = errors.New("cannot load the PKCS#11 module")
	// ErrToken: no initialized token in the configured slot, or no token
	// (or more than one) with the configured label.
	ErrToken = errors.New("no such slot or token")
	// ErrPIN: the token refused the PIN (incorrect, locked, expired,
	// invalid), or the PIN differs from the one this process is already
	// logged in to the token with.
	ErrPIN = errors.New("PIN rejected")
	// ErrClosed: the Token was closed.
	ErrClosed = errors.New("closed")
)

// Dialect is how a package built on this one talks to its users: Name
// starts every error message ("pkcs11 seal"), and the field names are
// what its users write (the seal's HCL attributes, the plugin's flags),
// so that an error points at the setting to fix.
type Dialect struct {
	Name                                    string
	Lib, Slot, TokenLabel, PIN, MaxSessions string
}

// defaultDialect serves a Config without one.
var defaultDialect = &Dialect{Name: "pkcs11", Lib: "lib", Slot: "slot", TokenLabel: "token_label", PIN: "pin", MaxSessions: "max_sessions"}

// Config names the module, the token and the user PIN. It prints
// without the PIN under every fmt verb.
type Config struct {
	// Lib is the path of the PKCS#11 module (a shared library). A bare
	// file name is left for the dynamic loader to find.
	Lib string
	// Slot or TokenLabel selects the token; exactly one is set.
	Slot       *uint
	TokenLabel string
	// PIN is the user (CKU_USER) PIN. It is never logged and never part
	// of an error.
	PIN string
	// PINFile, when set and PIN is empty, holds the PIN (see ReadPIN).
	PINFile string
	// MaxSessions is the session pool size: at most this many operations
	// run at once. 0 is DefaultMaxSessions.
	MaxSessions int
	// Dialect words the errors; nil is plain "pkcs11" with HCL names.
	Dialect *Dialect
}

func (c Config) dialect() *Dialect {
	if c.Dialect == nil {
		return defaultDialect
	}
	return c.Dialect
}

// Validate reports the first problem with c, wrapping ErrConfig. It does
// not read the PIN file or touch the module.
func (c Config) Validate() error {
	d := c.dialect()
	switch {
	case c.Lib == "":
		return fmt.Errorf("%s: %w: the module path is required (%s)", d.Name, ErrConfig, d.Lib)
	case c.Slot == nil && c.TokenLabel == "":
		return fmt.Errorf("%s: %w: one of %s and %s is required", d.Name, ErrConfig, d.TokenLabel, d.Slot)
	case c.Slot != nil && c.TokenLabel != "":
		return fmt.Errorf("%s: %w: %s and %s are exclusive; set one", d.Name, ErrConfig, d.TokenLabel, d.Slot)
	case c.PIN == "" && c.PINFile == "":
		return fmt.Errorf("%s: %w: the user PIN is required (%s)", d.Name, ErrConfig, d.PIN)
	case c.MaxSessions < 0 || c.MaxSessions > MaxMaxSessions:
		return fmt.Errorf("%s: %w: %s is %d, want 0 (default %d) to %d", d.Name, ErrConfig, d.MaxSessions, c.MaxSessions, DefaultMaxSessions, MaxMaxSessions)
	}
	return nil
}

// ReadPIN sets PIN from PINFile, when one is set. One trailing newline
// (LF or CRLF) is not part of the PIN.
func (c *Config) ReadPIN() error {
	if c.PINFile == "" {
		return nil
	}
	d := c.dialect()
	f, err := os.Open(c.PINFile)
	if err != nil {
		return fmt.Errorf("%s: %w: PIN file: %v", d.Name, ErrConfig, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPINFile+1))
	if err != nil {
		return fmt.Errorf("%s: %w: PIN file %s: %v", d.Name, ErrConfig, c.PINFile, err)
	}
	if len(b) > MaxPINFile {
		return fmt.Errorf("%s: %w: PIN file %s is larger than %d bytes", d.Name, ErrConfig, c.PINFile, MaxPINFile)
	}
	pin := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	clear(b) // the string is a copy; leave no second one in the buffer
	if pin == "" {
		return fmt.Errorf("%s: %w: PIN file %s is empty", d.Name, ErrConfig, c.PINFile)
	}
	c.PIN = pin
	return nil
}

// String describes the module, token and PIN (as <redacted> or <empty>),
// for the callers' own Config.String.
func (c Config) String() string {
	tok := "token_label=" + strconv.Quote(c.TokenLabel)
	if c.Slot != nil {
		tok = "slot=" + strconv.FormatUint(uint64(*c.Slot), 10)
	}
	pin := "<empty>"
	if c.PIN != "" {
		pin = "<redacted>"
	}
	return fmt.Sprintf("lib=%q %s pin=%s", c.Lib, tok, pin)
}

// Format makes every fmt verb print String, so no verb shows the PIN.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// GoString is String, for %#v in places that bypass Format.
func (c Config) GoString() string { return c.String() }
