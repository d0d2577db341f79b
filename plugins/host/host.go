// Package host runs backend plugins for a keyraft node: it launches a
// plugin binary through go-plugin (SHA-256 pinned, mutual TLS negotiated
// per launch), routes its logs into the node's log under its name, bounds
// every call with a timeout, and supervises it: when the process dies the
// call in flight fails with ErrPluginCrashed, and the plugin is started
// again with exponential backoff while the node keeps running.
//
//	c, err := host.Start(ctx, host.Config{
//		Name:    "bolt",
//		Command: "/usr/lib/keyraft/keyraft-plugin-bolt",
//		Args:    []string{"-path", dataDir + "/state.db"},
//		SHA256:  pinned,
//		Logger:  logger,
//	})
//	...
//	store := c.Storage() // a plugins.Storage backed by the plugin
package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/keyraft/keyraft/plugins/sdk"
)

// The errors a call through a plugin can fail with besides the backend's
// own. Test them with errors.Is; the message names the plugin.
var (
	// ErrPluginCrashed: the plugin process died during the call. The
	// call's effect is unknown (a Write may or may not have been applied);
	// the host is restarting the plugin.
	ErrPluginCrashed = errors.New("plugin process crashed")
	// ErrPluginUnavailable: the plugin is not running (being restarted, or
	// failing to start) or could not be reached.
	ErrPluginUnavailable = errors.New("plugin unavailable")
	// ErrPluginTimeout: the plugin did not answer within the call timeout.
	ErrPluginTimeout = errors.New("plugin call timed out")
	// ErrChecksumMismatch: the binary's SHA-256 is not the pinned one; it
	// is not started.
	ErrChecksumMismatch = errors.New("plugin binary checksum mismatch")
	// ErrStartFailed: the plugin could not be started (bad handshake,
	// exited early, no answer within the start timeout).
	ErrStartFailed = errors.New("plugin failed to start")
	// ErrViewLost: the plugin process holding a storage view has exited;
	// the view is gone.
	ErrViewLost = errors.New("storage view lost: the plugin process holding it exited")
	// ErrClosed: the host's Client was closed.
	ErrClosed = errors.New("plugin host closed")
)

// Config says which plugin to run and how.
type Config struct {
	// Name names the plugin in logs and errors ("bolt", "soft").
	Name string
	// Command is the plugin binary; Args its arguments.
	Command string
	Args    []string
	// Env is the plugin's environment, added to a minimal one (PATH,
	// TMPDIR): the node's own environment is not passed on.
	Env []string
	// SHA256 is the pinned checksum of Command, checked before every
	// start (restarts included).
	SHA256 []byte
	// Logger is the node's logger; the plugin's lines appear under
	// Logger.Named(Name). Nil discards them.
	Logger hclog.Logger
	// Timeout bounds every call (for a scan, every wait for the next
	// chunk). Default 30s.
	Timeout time.Duration
	// StartTimeout bounds a start up to the handshake. Default 30s.
	StartTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a restart, doubled
	// after each failed or short-lived start. Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
}

// stableAfter is how long a plugin must have run for its next restart to
// start again from MinBackoff.
const stableAfter = 30 * time.Second

// Client is a running, supervised plugin.
type Client struct {
	cfg Config
	log hclog.Logger // the plugin's logger: Logger.Named(Name)

	mu       sync.Mutex
	cur      *instance     // nil while down
	changed  chan struct{} // closed and replaced when cur changes
	lastErr  error         // why the plugin is down
	closed   bool
	restarts int

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	storage *storage
	crypto  *cryptoBackend
}

// instance is one launch of the plugin process.
type instance struct {
	pc      *plugin.Client
	rpc     plugin.ClientProtocol
	storage *sdk.StorageClient
	crypto  *sdk.CryptoClient
	pid     int
	started time.Time
	exited  <-chan struct{} // closed when the process has exited
	down    chan struct{}   // closed when the host stops using it
}

// stop ends the instance's process. With a grace period it first asks
// the plugin to shut down (go-plugin's Kill, which waits for an answer a
// frozen or stuck process never gives); whatever still runs after grace,
// or at once without one, gets SIGKILL. It returns once the process has
// exited (or after 10 s more).
func (in *instance) stop(grace time.Duration) {
	done := make(chan struct{})
	go func() { in.pc.Kill(); close(done) }()
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
		}
	}
	if in.pid > 0 {
		syscall.Kill(in.pid, syscall.SIGKILL)
	}
	select {
	case <-done: // Kill returns once the process is gone
	case <-time.After(10 * time.Second):
	}
}

func (in *instance) isDown() bool {
	select {
	case <-in.down:
		return true
	default:
		return false
	}
}

// Start launches the plugin and starts supervising it. An error here
// (checksum mismatch, bad handshake...) means no process is left running.
func Start(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Name == "" || cfg.Command == "" {
		return nil, errors.New("plugin host: Name and Command are required")
	}
	if len(cfg.SHA256) != sha256.Size {
		return nil, fmt.Errorf("plugin %q: SHA256 must be the %d-byte checksum of %s", cfg.Name, sha256.Size, cfg.Command)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	cfg.SHA256 = bytes.Clone(cfg.SHA256)
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger.Named(cfg.Name),
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.storage = &storage{c: c}
	c.crypto = &cryptoBackend{c: c}

	type result struct {
		in  *instance
		err error
	}
	ch := make(chan result, 1)
	go func() {
		in, err := c.launch()
		ch <- result{in, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		c.cur = r.in
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.in != nil {
				r.in.pc.Kill()
			}
		}()
		return nil, fmt.Errorf("plugin %q: %w: %v", cfg.Name, ErrStartFailed, ctx.Err())
	}
	go c.supervise()
	return c, nil
}

// Name is the plugin's name.
func (c *Client) Name() string { return c.cfg.Name }

// Pid is the process id of the running plugin, 0 while it is down.
func (c *Client) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return 0
	}
	return c.cur.pid
}

// Restarts counts the restarts since Start.
func (c *Client) Restarts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restarts
}

// Close stops supervising and stops the plugin process (gracefully, then
// killed after 2s). Later calls fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	c.mu.Lock()
	in := c.cur
	c.cur = nil
	c.broadcastLocked()
	c.mu.Unlock()
	if in != nil {
		close(in.down)
		in.stop(5 * time.Second) // a store closes cleanly if it can
	}
	return nil
}

func (c *Client) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// launch starts one plugin process: checksum, handshake, mTLS, dispense.
func (c *Client) launch() (*instance, error) {
	cmd := exec.Command(c.cfg.Command, c.cfg.Args...)
	if cmd.Err != nil {
		return nil, fmt.Errorf("plugin %q: %w: %v", c.cfg.Name, ErrStartFailed, cmd.Err)
	}
	// Our own check first, for an error that names both sums; go-plugin
	// checks again right before it starts the process.
	got, err := fileSHA256(cmd.Path)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w: %v", c.cfg.Name, ErrStartFailed, err)
	}
	if !bytes.Equal(got, c.cfg.SHA256) {
		return nil, c.mismatch(cmd.Path, got)
	}
	cmd.Env = c.env()
	tail := &stderrTail{}
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginSet(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		// A new hash object for every start: SecureConfig.Check writes the
		// file into it, so a reused one would hold the previous start's
		// bytes and refuse every restart.
		SecureConfig:    &plugin.SecureConfig{Checksum: c.cfg.SHA256, Hash: sha256.New()},
		AutoMTLS:        true,
		SkipHostEnv:     true,
		Logger:          fixedName{c.log},
		StartTimeout:    c.cfg.StartTimeout,
		SyncStdout:      &lineLogger{log: c.log, stream: "stdout"},
		SyncStderr:      &lineLogger{log: c.log, stream: "stderr"},
		Stderr:          tail,
		GRPCDialOptions: sdk.DialOptions(),
	})
	rpc, err := pc.Client()
	if err != nil {
		pc.Kill()
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			got, _ := fileSHA256(cmd.Path)
			return nil, c.mismatch(cmd.Path, got)
		}
		return nil, fmt.Errorf("plugin %q: %w: %s: %s", c.cfg.Name, ErrStartFailed, cmd.Path, startHint(err, tail.cause(secretValues(c.cfg.Env))))
	}
	rawS, errS := rpc.Dispense(sdk.StoragePluginName)
	rawC, errC := rpc.Dispense(sdk.CryptoPluginName)
	sc, okS := rawS.(*sdk.StorageClient)
	cc, okC := rawC.(*sdk.CryptoClient)
	if errS != nil || errC != nil || !okS || !okC {
		pc.Kill()
		return nil, fmt.Errorf("plugin %q: %w: dispensing: %v", c.cfg.Name, ErrStartFailed, errors.Join(errS, errC))
	}
	pid, _ := strconv.Atoi(pc.ID())
	c.log.Info("plugin started", "pid", pid, "path", cmd.Path)
	return &instance{pc: pc, rpc: rpc, storage: sc, crypto: cc, pid: pid, started: time.Now(), exited: sc.Done(), down: make(chan struct{})}, nil
}

func (c *Client) mismatch(path string, got []byte) error {
	return fmt.Errorf("plugin %q: %w: %s has sha256 %x, expected %x; refusing to start it", c.cfg.Name, ErrChecksumMismatch, path, got, c.cfg.SHA256)
}

// startHint turns go-plugin's start errors into one readable line. cause
// is what the plugin last said on stderr (stderrTail.cause), for one that
// exited before its handshake: the user of the API sees no node log.
func startHint(err error, cause string) string {
	msg := strings.TrimSpace(err.Error())
	exited := "the plugin exited before its handshake without a word on stderr"
	if cause != "" {
		exited = "the plugin exited before its handshake: " + cause
	}
	switch {
	case strings.Contains(msg, "Unrecognized remote plugin message"):
		line := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(msg, "\n", 2)[0], "Unrecognized remote plugin message:"))
		if line == "" {
			// Nothing on stdout: it failed before serving (wrong
			// settings, no token...) and said why on stderr.
			return exited
		}
		if len(line) > 200 {
			line = line[:200] + "..."
		}
		return fmt.Sprintf("bad handshake: the plugin wrote %q to stdout instead of the go-plugin handshake (not a keyraft plugin, or it prints to stdout before serving)", line)
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return "no handshake within the start timeout"
	case strings.Contains(msg, "plugin exited before we could connect"):
		return exited
	case strings.Contains(msg, "Incompatible API version"), strings.Contains(msg, "incompatible"):
		return "incompatible plugin protocol version: " + strings.ReplaceAll(msg, "\n", " ")
	}
	return strings.ReplaceAll(msg, "\n", " ")
}

func (c *Client) env() []string {
	var env []string
	for _, k := range []string{"PATH", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, c.cfg.Env...)
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// supervise restarts the plugin whenever its process exits or stops
// answering, until Close.
func (c *Client) supervise() {
	defer close(c.done)
	attempt := 0
	for {
		c.mu.Lock()
		in := c.cur
		c.mu.Unlock()
		var reason string
		select {
		case <-c.stop:
			return
		case <-in.exited:
			reason = "plugin process exited"
		case <-c.kick:
			if c.ping(in) {
				continue
			}
			reason = "plugin stopped answering"
		}
		c.mu.Lock()
		c.cur = nil
		c.lastErr = fmt.Errorf("%s (pid %d)", reason, in.pid)
		c.broadcastLocked()
		c.mu.Unlock()
		close(in.down)
		c.log.Error(reason+"; restarting it", "pid", in.pid, "uptime", time.Since(in.started).Round(time.Millisecond))
		in.stop(0)
		if time.Since(in.started) >= stableAfter {
			attempt = 0
		}
		for {
			d := c.backoff(attempt)
			attempt++
			select {
			case <-c.stop:
				return
			case <-time.After(d):
			}
			next, err := c.launch()
			if err != nil {
				c.mu.Lock()
				c.lastErr = err
				c.mu.Unlock()
				c.log.Error("plugin restart failed", "attempt", attempt, "error", err, "next_in", c.backoff(attempt))
				continue
			}
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				next.pc.Kill()
				return
			}
			c.cur = next
			c.lastErr = nil
			c.restarts++
			c.broadcastLocked()
			c.mu.Unlock()
			break
		}
	}
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.MinBackoff
	for i := 0; i < attempt && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.cfg.MaxBackoff)
}

// ping checks the plugin's health service, bounded by 2s.
func (c *Client) ping(in *instance) bool {
	ch := make(chan error, 1)
	go func() { ch <- in.rpc.Ping() }()
	select {
	case err := <-ch:
		return err == nil
	case <-in.exited:
		return false
	case <-time.After(2 * time.Second):
		return false
	}
}

// suspect asks the supervisor to check the plugin.
func (c *Client) suspect() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// acquire returns the running instance, waiting while the plugin is
// being restarted, until ctx ends.
func (c *Client) acquire(ctx context.Context) (*instance, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if in := c.cur; in != nil {
			c.mu.Unlock()
			return in, nil
		}
		ch, why := c.changed, c.lastErr
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: not running: %v", ErrPluginUnavailable, why)
		}
	}
}

// Error is a failed call through a plugin.
type Error struct {
	Plugin string
	Op     string
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("plugin %q: %s: %v", e.Plugin, e.Op, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// call runs fn on the running instance with the call timeout and turns
// its failure into the host's errors.
func (c *Client) call(parent context.Context, op string, fn func(ctx context.Context, in *instance) error) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(parent, c.cfg.Timeout)
	defer cancel()
	in, err := c.acquire(ctx)
	if err != nil {
		return &Error{c.cfg.Name, op, err}
	}
	err = fn(ctx, in)
	// gRPC's own timer can end the call a moment before ctx says so (a
	// loaded machine showed it): the host's timeout has passed either way.
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded) || (err != nil && time.Since(start) >= c.cfg.Timeout)
	return c.classify(parent, timedOut, op, in, err)
}

// acquireFor is acquire bounded by the call timeout, for streams.
func (c *Client) acquireFor(op string) (*instance, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	in, err := c.acquire(ctx)
	if err != nil {
		return nil, &Error{c.cfg.Name, op, err}
	}
	return in, nil
}

// callOn is call on one given instance (a view's): if that process is
// gone the view is too.
func (c *Client) callOn(in *instance, op string, fn func(ctx context.Context) error) error {
	if in.isDown() {
		return &Error{c.cfg.Name, op, ErrViewLost}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	err := fn(ctx)
	err = c.classify(context.Background(), errors.Is(ctx.Err(), context.DeadlineExceeded), op, in, err)
	if errors.Is(err, ErrPluginCrashed) || (err != nil && in.isDown()) {
		return &Error{c.cfg.Name, op, fmt.Errorf("%w: %w", ErrViewLost, errors.Unwrap(err))}
	}
	return err
}

// classify turns a call's error into the host's: the backend's errors
// pass through (wrapped with the plugin's name); a transport failure is a
// cancellation by the caller, a timeout, a crash or an unavailability.
func (c *Client) classify(parent context.Context, timedOut bool, op string, in *instance, err error) error {
	if err == nil {
		return nil
	}
	var te *sdk.TransportError
	if !errors.As(err, &te) {
		select {
		case <-in.exited:
			// An odd error from a process that is gone: report the crash.
			c.suspect()
			return &Error{c.cfg.Name, op, fmt.Errorf("%w during the call (pid %d): %v", ErrPluginCrashed, in.pid, err)}
		default:
		}
		return &Error{c.cfg.Name, op, err}
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return &Error{c.cfg.Name, op, ErrClosed}
	case parent.Err() != nil:
		return &Error{c.cfg.Name, op, parent.Err()}
	case timedOut:
		c.suspect()
		return &Error{c.cfg.Name, op, fmt.Errorf("%w after %s", ErrPluginTimeout, c.cfg.Timeout)}
	}
	// The connection failed: did the process die?
	select {
	case <-in.exited:
	case <-time.After(2 * time.Second):
		c.suspect()
		return &Error{c.cfg.Name, op, fmt.Errorf("%w: %v", ErrPluginUnavailable, te)}
	}
	c.suspect()
	msg := fmt.Errorf("%w during the call (pid %d); it is being restarted", ErrPluginCrashed, in.pid)
	if op == "Write" {
		msg = fmt.Errorf("%w during the call (pid %d); the batch may or may not have been applied; it is being restarted", ErrPluginCrashed, in.pid)
	}
	return &Error{c.cfg.Name, op, msg}
}

// idleTimer is a stream's timeout: it fires after Timeout without an
// answer from the plugin, and is paused while the caller's callback runs.
type idleTimer struct {
	t     *time.Timer
	fired atomic.Bool
	d     time.Duration
}

func newIdleTimer(d time.Duration, cancel context.CancelFunc) *idleTimer {
	it := &idleTimer{d: d}
	it.t = time.AfterFunc(d, func() { it.fired.Store(true); cancel() })
	return it
}

func (it *idleTimer) pause()  { it.t.Stop() }
func (it *idleTimer) resume() { it.t.Reset(it.d) }
