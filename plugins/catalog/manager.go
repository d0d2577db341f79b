package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/sdk"
)

// Lookup returns the catalog entry of a plugin (ErrNotFound when there is
// none). The Manager calls it on every use, so it must be cheap (a read
// of the node's local state).
type Lookup func(typ, name string) (*Entry, error)

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Dir is the node's plugin_directory ("" = only built-ins run).
	Dir    string
	Lookup Lookup
	Logger hclog.Logger
	// Timeout bounds every call into a plugin (host.Config.Timeout).
	Timeout time.Duration
	// InProcess, when set, serves a built-in crypto backend in the node's
	// own process instead of starting it (benchmarks, debugging). The
	// default runs every backend out of process.
	InProcess map[string]sdk.CryptoBackend
	// MaxInFlight and MaxBatch tune how calls are coalesced (0: defaults).
	MaxInFlight, MaxBatch int
	// Default names the crypto backend of keys created without one.
	Default string
}

// Manager runs the crypto backends of a node: each is started on first
// use, restarted (by its host) when it dies, restarted when its entry
// changes (reload, re-register with a new checksum) and stopped when its
// entry is removed.
type Manager struct {
	cfg ManagerConfig

	mu      sync.Mutex
	procs   map[string]*proc
	adopted []*host.Client // started elsewhere (the storage plugin), for Status
	closed  bool
}

type proc struct {
	entry   Entry
	ready   chan struct{} // closed when the start has finished
	client  *host.Client
	backend sdk.CryptoBackend
	err     error
	failed  time.Time
}

// retryFailedStart is how long a failed start (say, a checksum mismatch)
// is answered from memory before the node tries again.
const retryFailedStart = 2 * time.Second

// NewManager returns a Manager; it starts nothing until a backend is used.
func NewManager(cfg ManagerConfig) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Manager{cfg: cfg, procs: map[string]*proc{}}
}

// DefaultBackend names the crypto backend of keys created without one.
func (m *Manager) DefaultBackend() string { return m.cfg.Default }

// ErrManagerClosed is returned after Close.
var ErrManagerClosed = errors.New("plugin manager closed")

// Crypto returns the crypto backend name, starting its plugin if needed.
// Errors: ErrNotFound, ErrNoPluginDirectory, host.ErrChecksumMismatch,
// host.ErrStartFailed (wrapped, with the plugin's name), ErrManagerClosed.
func (m *Manager) Crypto(ctx context.Context, name string) (sdk.CryptoBackend, error) {
	if b, ok := m.cfg.InProcess[name]; ok {
		return b, nil
	}
	e, err := m.cfg.Lookup(TypeCrypto, name)
	if errors.Is(err, ErrNotFound) {
		// Deregistered (through any node): stop what still runs here.
		m.Forget(name)
	}
	if err != nil {
		return nil, err
	}
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrManagerClosed
		}
		p := m.procs[name]
		if p != nil && sameEntry(&p.entry, e) {
			m.mu.Unlock()
			select {
			case <-p.ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if p.err == nil {
				return p.backend, nil
			}
			if time.Since(p.failed) < retryFailedStart {
				return nil, p.err
			}
			m.mu.Lock()
			if m.procs[name] == p {
				delete(m.procs, name)
			}
			m.mu.Unlock()
			continue
		}
		np := &proc{entry: *e, ready: make(chan struct{})}
		m.procs[name] = np
		m.mu.Unlock()
		if p != nil {
			go m.stop(p, "its catalog entry changed")
		}
		m.start(np)
	}
}

func sameEntry(a, b *Entry) bool {
	return a.Command == b.Command && a.SHA256 == b.SHA256 && a.Generation == b.Generation &&
		slices.Equal(a.Args, b.Args) && slices.Equal(a.Env, b.Env)
}

func (m *Manager) start(p *proc) {
	defer close(p.ready)
	path, err := p.entry.Path(m.cfg.Dir)
	if err == nil {
		var sum []byte
		sum, err = ParseSHA256(p.entry.SHA256)
		if err == nil {
			// A start outlives the request that caused it.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			p.client, err = host.Start(ctx, host.Config{
				Name: p.entry.Name, Command: path, Args: p.entry.Args, Env: p.entry.Env,
				SHA256: sum, Logger: m.cfg.Logger, Timeout: m.cfg.Timeout,
			})
			cancel()
		}
	}
	if err != nil {
		p.err, p.failed = fmt.Errorf("crypto backend %q: %w", p.entry.Name, err), time.Now()
		m.cfg.Logger.Error("cannot start plugin", "plugin", p.entry.Name, "error", err)
		return
	}
	p.backend = Coalesced(p.client.Crypto(), m.cfg.MaxInFlight, m.cfg.MaxBatch)
}

func (m *Manager) stop(p *proc, why string) {
	<-p.ready
	if p.client != nil {
		m.cfg.Logger.Info("stopping plugin", "plugin", p.entry.Name, "reason", why)
		p.client.Close()
	}
}

// Forget stops the plugin name if it runs (its entry was removed).
func (m *Manager) Forget(name string) {
	m.mu.Lock()
	p := m.procs[name]
	delete(m.procs, name)
	m.mu.Unlock()
	if p != nil {
		m.stop(p, "deregistered")
	}
}

// Adopt lists a plugin started elsewhere (the storage plugin) in Status.
func (m *Manager) Adopt(c *host.Client) {
	m.mu.Lock()
	m.adopted = append(m.adopted, c)
	m.mu.Unlock()
}

// Status is what a node knows about one running plugin.
type Status struct {
	Name     string `json:"name"`
	Running  bool   `json:"running"`
	Pid      int    `json:"pid,omitempty"`
	Restarts int    `json:"restarts"`
	Error    string `json:"error,omitempty"`
}

// Status reports the plugins this node has started.
func (m *Manager) Status() map[string]Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Status{}
	for _, c := range m.adopted {
		out[c.Name()] = Status{Name: c.Name(), Running: c.Pid() != 0, Pid: c.Pid(), Restarts: c.Restarts()}
	}
	for name, p := range m.procs {
		select {
		case <-p.ready:
		default:
			out[name] = Status{Name: name}
			continue
		}
		s := Status{Name: name}
		if p.err != nil {
			s.Error = p.err.Error()
		} else {
			s.Pid, s.Restarts = p.client.Pid(), p.client.Restarts()
			s.Running = s.Pid != 0
		}
		out[name] = s
	}
	return out
}

// Close stops every plugin the manager started.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	procs := m.procs
	m.procs = map[string]*proc{}
	m.mu.Unlock()
	for _, p := range procs {
		m.stop(p, "node shutting down")
	}
}
