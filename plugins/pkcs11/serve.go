package pkcs11

import (
	"os"

	"github.com/keyraft/keyraft/plugins/sdk"
)

// Serve is the whole plugin: it reads the configuration from args and
// getenv (see ParseConfig), removes KEYRAFT_HSM_PIN from the process's
// environment, opens the token, serves the backend until the node stops
// the plugin, and closes the token. It returns an error (already logged
// to the node) when the configuration or the token is wrong. Both
// keyraft-plugin-pkcs11 and `keyraft plugin serve-builtin pkcs11` call it.
func Serve(args []string, getenv func(string) string) error {
	log := sdk.Logger()
	cfg, err := ParseConfig(args, getenv)
	_ = os.Unsetenv(EnvPIN)
	if err != nil {
		log.Error("configuration", "error", err)
		return err
	}
	b, err := Open(cfg)
	if err != nil {
		log.Error("opening the token", "config", cfg.String(), "error", err)
		return err
	}
	log.Info("serving pkcs11 crypto", "backend", b.String())
	sdk.ServeCrypto(b)
	if err := b.Close(); err != nil {
		log.Error("closing the token", "error", err)
	}
	return nil
}
