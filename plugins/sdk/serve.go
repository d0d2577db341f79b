package sdk

import (
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/keyraft/keyraft/plugins"
)

// stderr is the process's real standard error, taken before go-plugin
// redirects os.Stderr: the host reads it and re-logs each JSON line under
// the plugin's name, at its level.
var stderr = os.Stderr

var (
	loggerOnce sync.Once
	logger     hclog.Logger
)

// Logger is the logger a plugin logs with. Its lines reach the node's log
// under the plugin's name. Never log key material or stored values.
func Logger() hclog.Logger {
	loggerOnce.Do(func() {
		logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: stderr, JSONFormat: true})
	})
	return logger
}

// Backends are what one plugin binary serves; usually one of the two.
type Backends struct {
	Storage plugins.Storage
	Crypto  CryptoBackend
}

// ServeStorage serves a storage backend until the node stops the plugin,
// then closes it. It is all a storage plugin's main needs to call.
func ServeStorage(impl plugins.Storage) { Serve(Backends{Storage: impl}) }

// ServeCrypto serves a crypto backend until the node stops the plugin.
func ServeCrypto(impl CryptoBackend) { Serve(Backends{Crypto: impl}) }

// Serve serves the backends until the node stops the plugin, then closes
// the storage backend (after any views still open). When the node that
// started the plugin dies, the plugin closes its storage and exits too,
// so that no orphan keeps the store locked.
func Serve(b Backends) {
	log := Logger()
	set := plugin.PluginSet{}
	var sp *StoragePlugin
	if b.Storage != nil {
		sp = &StoragePlugin{Impl: b.Storage}
		set[StoragePluginName] = sp
	}
	if b.Crypto != nil {
		set[CryptoPluginName] = &CryptoPlugin{Impl: b.Crypto}
	}
	var closeOnce sync.Once
	closeStore := func() {
		if sp != nil {
			closeOnce.Do(func() {
				if err := sp.close(); err != nil {
					log.Error("closing storage", "error", err)
				}
			})
		}
	}
	watchParent(log, closeStore)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         set,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, ServerOptions()...)...)
		},
		Logger: log,
	})
	closeStore()
}

// close closes the storage through its server (views first) or directly
// when no server was made.
func (p *StoragePlugin) close() error {
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	if srv != nil {
		return srv.closeAll()
	}
	return p.Impl.Close()
}

// watchParent exits the plugin when its parent process is gone (the
// plugin was re-parented).
func watchParent(log hclog.Logger, cleanup func()) {
	ppid := os.Getppid()
	if ppid <= 1 {
		return
	}
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for range t.C {
			if os.Getppid() != ppid {
				log.Error("the node that started this plugin is gone; exiting", "parent_pid", ppid)
				done := make(chan struct{})
				go func() { cleanup(); close(done) }()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
				}
				os.Exit(3)
			}
		}
	}()
}

// LaunchedByNode reports whether a keyraft node started this process as
// a plugin (its handshake cookie is set). A plugin's main checks it before
// opening anything, so that running the binary by hand touches nothing.
func LaunchedByNode() bool {
	return os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue
}
