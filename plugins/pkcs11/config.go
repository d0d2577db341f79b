package pkcs11

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	ipk "github.com/keyraft/keyraft/internal/pkcs11"
)

// The environment variables the plugin reads. Arguments win over them;
// the PIN is never an argument (arguments show in ps and in the catalog).
const (
	EnvLib        = "KEYRAFT_HSM_LIB"
	EnvTokenLabel = "KEYRAFT_HSM_TOKEN_LABEL"
	EnvSlot       = "KEYRAFT_HSM_SLOT"
	EnvPIN        = "KEYRAFT_HSM_PIN"
	EnvPINFile    = "KEYRAFT_HSM_PIN_FILE"
)

// DefaultMaxSessions is the session pool size when none is configured.
const DefaultMaxSessions = ipk.DefaultMaxSessions

// ErrConfig is wrapped by every configuration error.
var ErrConfig = ipk.ErrConfig

// dialect words the shared PKCS#11 code's errors for the plugin: its
// flags and environment variables.
var dialect = &ipk.Dialect{Name: "pkcs11 plugin", Lib: "-lib or " + EnvLib, Slot: "-slot", TokenLabel: "-token-label",
	PIN: EnvPIN + " or -pin-file", MaxSessions: "-max-sessions"}

// Config says which module, token and PIN the backend uses. It prints
// without the PIN under every fmt verb.
type Config struct {
	// Lib is the path of the PKCS#11 module.
	Lib string
	// TokenLabel or Slot selects the token; exactly one is set.
	TokenLabel string
	Slot       *uint
	// PIN is the user PIN. Secret.
	PIN string
	// PINFile, when set, holds the PIN (read by ReadPIN; one trailing
	// newline is ignored).
	PINFile string
	// MaxSessions bounds the operations that run at once.
	MaxSessions int
}

// base is c for internal/pkcs11.
func (c Config) base() ipk.Config {
	return ipk.Config{Lib: c.Lib, Slot: c.Slot, TokenLabel: c.TokenLabel, PIN: c.PIN, PINFile: c.PINFile, MaxSessions: c.MaxSessions, Dialect: dialect}
}

// ParseConfig reads the plugin's arguments and environment (getenv,
// usually os.Getenv):
//
//	-lib PATH           (or KEYRAFT_HSM_LIB)
//	-token-label LABEL  (or KEYRAFT_HSM_TOKEN_LABEL)
//	-slot N             (or KEYRAFT_HSM_SLOT)
//	-pin-file PATH      (or KEYRAFT_HSM_PIN_FILE)
//	-max-sessions N     (default 8)
//
// and the PIN from KEYRAFT_HSM_PIN unless a PIN file is set. It does not
// read the PIN file (ReadPIN does) or touch the module. Errors wrap
// ErrConfig and never hold the PIN.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("keyraft-plugin-pkcs11", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c Config
	var slot string
	fs.StringVar(&c.Lib, "lib", getenv(EnvLib), "path of the PKCS#11 module")
	fs.StringVar(&c.TokenLabel, "token-label", getenv(EnvTokenLabel), "label of the token")
	fs.StringVar(&slot, "slot", getenv(EnvSlot), "slot ID of the token (instead of -token-label)")
	fs.StringVar(&c.PINFile, "pin-file", getenv(EnvPINFile), "file holding the user PIN (else KEYRAFT_HSM_PIN)")
	fs.IntVar(&c.MaxSessions, "max-sessions", DefaultMaxSessions, "most PKCS#11 sessions (operations at once)")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("pkcs11 plugin: %w: %v", ErrConfig, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("pkcs11 plugin: %w: unexpected argument %q", ErrConfig, fs.Arg(0))
	}
	if slot != "" {
		n, err := strconv.ParseUint(slot, 10, 32)
		if err != nil {
			return Config{}, fmt.Errorf("pkcs11 plugin: %w: slot %q is not a slot number", ErrConfig, slot)
		}
		u := uint(n)
		c.Slot = &u
	}
	if c.PINFile == "" {
		c.PIN = getenv(EnvPIN)
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// validate is the shared check, except that the plugin's -max-sessions
// has no "0 means the default" (its flag's default is 8).
func (c Config) validate() error {
	if c.MaxSessions < 1 {
		return fmt.Errorf("pkcs11 plugin: %w: -max-sessions is %d, want 1 to %d", ErrConfig, c.MaxSessions, ipk.MaxMaxSessions)
	}
	return c.base().Validate()
}

// ReadPIN fills in PIN from PINFile, when one is set.
func (c *Config) ReadPIN() error {
	b := c.base()
	if err := b.ReadPIN(); err != nil {
		return err
	}
	c.PIN = b.PIN
	return nil
}

// String describes c without its PIN.
func (c Config) String() string {
	return fmt.Sprintf("pkcs11.Config{%s pin_file=%q max_sessions=%d}", c.base().String(), c.PINFile, c.MaxSessions)
}

// Format makes every fmt verb print String, so no verb shows the PIN.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// NodeEnv picks from a node's environment (os.Environ()) what the
// built-in plugin reads: the KEYRAFT_HSM_* variables and SOFTHSM2_CONF.
// A node adds them to the built-in pkcs11 plugin's environment, since a
// plugin otherwise gets only a minimal one. Secret: the result may hold
// the PIN.
func NodeEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "KEYRAFT_HSM_") || strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			out = append(out, kv)
		}
	}
	return out
}
