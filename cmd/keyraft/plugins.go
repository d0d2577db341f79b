package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/config"
	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/catalog"
	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/pkcs11"
	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
)

// nodePlugins are a server's backends: the storage plugin started before
// the node (it holds the node's state) and the manager of crypto
// backends, started on first use.
type nodePlugins struct {
	manager *catalog.Manager
	node    atomic.Pointer[cluster.Node]
}

func (p *nodePlugins) Close() { p.manager.Close() }

// warmUp starts the default crypto backend as soon as the node can read
// the catalog (it is unsealed and caught up), so that the first request
// does not wait for a process start.
func (p *nodePlugins) warmUp(ctx context.Context, node *cluster.Node) {
	def := p.manager.DefaultBackend()
	if def == "" || def == "builtin" {
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if !node.Sealed() {
			if _, err := p.manager.Crypto(ctx, def); err == nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setUpPlugins resolves the built-in plugins, makes the crypto backend
// manager and tells nc how to open the state store: through the storage
// plugin, out of process, unless plugins_in_process is set.
func setUpPlugins(ctx context.Context, cfg *config.Config, nc *cluster.Config, log hclog.Logger) (*nodePlugins, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the keyraft binary for its built-in plugins: %v", err)
	}
	builtins, err := catalog.ResolveBuiltins(cfg.PluginDirectory, self, nil, map[string][]string{"pkcs11": pkcs11PluginEnv(cfg, os.Getenv)})
	if err != nil {
		return nil, err
	}
	nc.BuiltinPlugins = builtins
	p := &nodePlugins{}
	def := cfg.DefaultCryptoBackend
	if def == "" {
		def = "soft"
	}
	mc := catalog.ManagerConfig{
		Dir: cfg.PluginDirectory, Logger: log, Default: def,
		Lookup: func(typ, name string) (*catalog.Entry, error) {
			n := p.node.Load()
			if n == nil {
				return nil, cluster.ErrNotReady
			}
			return n.PluginEntry(typ, name)
		},
	}
	if cfg.PluginsInProcess {
		mc.InProcess = map[string]sdk.CryptoBackend{"soft": soft.New()}
	}
	p.manager = catalog.NewManager(mc)
	if cfg.PluginsInProcess && (cfg.Storage.Plugin == "" || cfg.Storage.Plugin == "bolt") {
		return p, nil // nc.OpenStorage nil: bolt in this process
	}
	entry, err := storagePluginEntry(cfg, builtins)
	if err != nil {
		return nil, err
	}
	nc.OpenStorage = func(path string) (plugins.Storage, error) {
		sum, err := catalog.ParseSHA256(entry.SHA256)
		if err != nil {
			return nil, err
		}
		cmd, err := entry.Path(cfg.PluginDirectory)
		if err != nil {
			return nil, err
		}
		c, err := host.Start(ctx, host.Config{
			Name: entry.Name, Command: cmd, Args: append(append([]string(nil), entry.Args...), "-path", path),
			Env: entry.Env, SHA256: sum, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("starting storage plugin: %w", err)
		}
		p.manager.Adopt(c)
		// The hot path reads a few records per request; a process round
		// trip each would cost more than the request's crypto.
		return plugins.Cached(c.DurableStorage(), stateCacheBytes), nil
	}
	return p, nil
}

// stateCacheBytes bounds the node's read cache of its storage plugin.
const stateCacheBytes = 64 << 20

// storagePluginEntry is the storage plugin the config names: bolt (built
// in) or a file in plugin_directory pinned by the config's checksum.
func storagePluginEntry(cfg *config.Config, builtins []catalog.Entry) (catalog.Entry, error) {
	name := cfg.Storage.Plugin
	if name == "" || name == "bolt" {
		for _, b := range builtins {
			if b.Type == catalog.TypeStorage && b.Name == "bolt" {
				return b, nil
			}
		}
		return catalog.Entry{}, fmt.Errorf("built-in storage plugin bolt not found")
	}
	e := catalog.Entry{Name: name, Type: catalog.TypeStorage, Command: filepath.Base(name), SHA256: cfg.Storage.PluginSHA256}
	if err := e.Validate(); err != nil {
		return catalog.Entry{}, fmt.Errorf(`storage "raft" plugin: %v`, err)
	}
	return e, nil
}

// hsmModuleEnv are environment variables PKCS#11 modules read for their
// own configuration (SoftHSM2, Thales Luna).
var hsmModuleEnv = []string{"SOFTHSM2_CONF", "ChrystokiConfigurationPath"}

// pkcs11PluginEnv is the environment of the built-in pkcs11 crypto
// plugin: the node's own KEYRAFT_HSM_* settings when it has any, else the
// token of its pkcs11 seal (one HSM for both is the common set-up). The
// plugin removes the PIN from its environment once read.
func pkcs11PluginEnv(cfg *config.Config, getenv func(string) string) []string {
	var env, own []string
	// A PKCS#11 module may read its own settings from the environment
	// (plugins get a minimal one): pass the known ones on.
	for _, k := range hsmModuleEnv {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	for _, k := range []string{pkcs11.EnvLib, pkcs11.EnvTokenLabel, pkcs11.EnvSlot, pkcs11.EnvPIN, pkcs11.EnvPINFile} {
		if v := getenv(k); v != "" {
			own = append(own, k+"="+v)
		}
	}
	if getenv(pkcs11.EnvLib) != "" || cfg.Seal.PKCS11 == nil {
		return append(env, own...)
	}
	s := cfg.Seal.PKCS11
	env = append(env, pkcs11.EnvLib+"="+s.Lib)
	if s.TokenLabel != "" {
		env = append(env, pkcs11.EnvTokenLabel+"="+s.TokenLabel)
	} else if s.Slot != nil {
		env = append(env, fmt.Sprintf("%s=%d", pkcs11.EnvSlot, *s.Slot))
	}
	if s.PINFile != "" {
		env = append(env, pkcs11.EnvPINFile+"="+s.PINFile)
	} else if pin, err := s.ResolvePIN(getenv, nil); err == nil && pin != "" {
		env = append(env, pkcs11.EnvPIN+"="+pin)
	}
	return env
}
