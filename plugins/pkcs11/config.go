package pkcs11

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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

const (
	// DefaultMaxSessions is the session pool size when none is configured.
	DefaultMaxSessions = 8
	maxMaxSessions     = 1024
	maxPINFile         = 4096
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("pkcs11 plugin: invalid configuration")

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
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected argument %q", ErrConfig, fs.Arg(0))
	}
	if slot != "" {
		n, err := strconv.ParseUint(slot, 10, 32)
		if err != nil {
			return Config{}, fmt.Errorf("%w: slot %q is not a slot number", ErrConfig, slot)
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

func (c Config) validate() error {
	switch {
	case c.Lib == "":
		return fmt.Errorf("%w: the module path is required (-lib or %s)", ErrConfig, EnvLib)
	case c.TokenLabel == "" && c.Slot == nil:
		return fmt.Errorf("%w: one of -token-label and -slot is required (or %s, %s)", ErrConfig, EnvTokenLabel, EnvSlot)
	case c.TokenLabel != "" && c.Slot != nil:
		return fmt.Errorf("%w: -token-label and -slot are exclusive; set one", ErrConfig)
	case c.PIN == "" && c.PINFile == "":
		return fmt.Errorf("%w: the user PIN is required (%s or -pin-file)", ErrConfig, EnvPIN)
	case c.MaxSessions < 1 || c.MaxSessions > maxMaxSessions:
		return fmt.Errorf("%w: -max-sessions is %d, want 1 to %d", ErrConfig, c.MaxSessions, maxMaxSessions)
	}
	return nil
}

// ReadPIN fills in PIN from PINFile, when one is set.
func (c *Config) ReadPIN() error {
	if c.PINFile == "" {
		return nil
	}
	f, err := os.Open(c.PINFile)
	if err != nil {
		return fmt.Errorf("%w: PIN file: %v", ErrConfig, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPINFile+1))
	if err != nil {
		return fmt.Errorf("%w: PIN file %s: %v", ErrConfig, c.PINFile, err)
	}
	if len(b) > maxPINFile {
		return fmt.Errorf("%w: PIN file %s is larger than %d bytes", ErrConfig, c.PINFile, maxPINFile)
	}
	pin := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	for i := range b {
		b[i] = 0
	}
	if pin == "" {
		return fmt.Errorf("%w: PIN file %s is empty", ErrConfig, c.PINFile)
	}
	c.PIN = pin
	return nil
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
	return fmt.Sprintf("pkcs11.Config{lib=%q %s pin=%s pin_file=%q max_sessions=%d}", c.Lib, tok, pin, c.PINFile, c.MaxSessions)
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
