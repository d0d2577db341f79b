package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/cluster/link"
	"github.com/keyraft/keyraft/config"
	"github.com/keyraft/keyraft/internal/version"
	"github.com/keyraft/keyraft/seal"
	"github.com/keyraft/keyraft/seal/pkcs11"
	"github.com/keyraft/keyraft/transit"
	"github.com/keyraft/keyraft/transport"
)

const serverUsage = `usage: keyraft server -dev [-dev-root-token-id=TOKEN] [-dev-listen-address=ADDR]
       keyraft server -config=FILE

Run a keyraft node.

With -dev the node keeps its data in a temporary directory that is removed
on exit, initializes itself with one unseal key, unseals, and prints the
root token. Never use -dev for keys you want to keep. Besides the API port
(-dev-listen-address) it takes the next two ports for its cluster port and
gossip, or other free ports when those are taken; the banner lists them.

With -config the node reads an HCL file in Vault's shape (storage "raft",
listener "tcp", seal "shamir", api_addr, cluster_addr). It starts sealed:
initialize once with 'keyraft operator init', and unseal after every start
with 'keyraft operator unseal'.

Flags:
`

// runServer runs a node until ctx ends (SIGINT or SIGTERM in main).
func runServer(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dev := fs.Bool("dev", false, "run an in-memory-like development node, initialized and unsealed")
	configPath := fs.String("config", "", "path to the HCL server config `file`")
	devToken := fs.String("dev-root-token-id", "", "root `token` to use in dev mode (default: random)")
	devListen := fs.String("dev-listen-address", config.DefaultListenAddress, "API `address` in dev mode (with -dev-cluster: of the first node; the others use the next ports up by 10)")
	devCluster := fs.Int("dev-cluster", 0, "start `N` (3 or 5) real nodes in this process, initialized, joined and unsealed")
	logLevel := fs.String("log-level", "", "trace, debug, info, warn or error (overrides the config)")
	unsafeTest := fs.Bool(unsafeTestSettingsFlag, false, "honour "+unsafeMinPendingWindowEnv+" on a server that is not a dev server (tests only)")
	inProcess := fs.Bool("plugins-in-process", false, "run the built-in storage and crypto backends inside the server process (debugging, measuring the plugin boundary); overrides the config")
	fail := func(code int, msg, hint string) int {
		fmt.Fprintf(stderr, "error: %s\n", msg)
		if hint != "" {
			fmt.Fprintf(stderr, "hint: %s\n", hint)
		}
		return code
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, serverUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		return fail(2, err.Error(), "run 'keyraft server -h' for the flags")
	}
	if fs.NArg() > 0 {
		return fail(2, fmt.Sprintf("unexpected argument %q", fs.Arg(0)), "flags come as -name=value; run 'keyraft server -h'")
	}
	switch {
	case *devCluster != 0 && (*dev || *configPath != ""):
		return fail(2, "-dev-cluster cannot be used with -dev or -config", "run 'keyraft server -dev-cluster 3' on its own")
	case *devCluster != 0 && *devCluster != 3 && *devCluster != 5:
		return fail(2, fmt.Sprintf("-dev-cluster %d: a dev cluster has 3 or 5 nodes", *devCluster), "try 'keyraft server -dev-cluster 3'")
	case *devCluster != 0:
	case *dev && *configPath != "":
		return fail(2, "-dev and -config cannot be used together", "use -dev for a throwaway node, -config for a real one")
	case !*dev && *configPath == "" && *devCluster == 0:
		return fail(2, "the server needs -config=FILE or -dev", "try 'keyraft server -dev' for a throwaway development node")
	}
	// Read from the process environment, as the lifecycle always did
	// (tests of dev servers set it there).
	minWindow, msg, hint := unsafeMinPendingWindow(os.Getenv, *dev || *devCluster != 0, *unsafeTest)
	if msg != "" {
		return fail(2, msg, hint)
	}
	ctx = withUnsafeMinPendingWindow(ctx, minWindow)

	if *devCluster != 0 {
		level := "info"
		if *logLevel != "" {
			level = *logLevel
		}
		logger := hclog.New(&hclog.LoggerOptions{Name: "keyraft", Level: hclog.LevelFromString(level), Output: stderr})
		if err := serveDevCluster(ctx, *devCluster, *devListen, *devToken, stdout, logger); err != nil {
			hint := "-dev-listen-address takes host:port of the first node, e.g. 127.0.0.1:8200"
			if errors.Is(err, errDevPortInUse) || errors.Is(err, syscall.EADDRINUSE) {
				hint = devClusterPortsHelp
			}
			return fail(1, err.Error(), hint)
		}
		return 0
	}

	var cfg *config.Config
	var side devSidePorts
	if *dev {
		cfg = config.Dev(*devListen)
		if host, port, err := net.SplitHostPort(*devListen); err == nil {
			if p, err := strconv.Atoi(port); err == nil && p >= 0 && p <= 65535-2 {
				side = pickDevSidePorts(host, p)
				side.apply(cfg)
			}
		}
		dir, err := os.MkdirTemp("", "keyraft-dev-")
		if err != nil {
			return fail(1, fmt.Sprintf("creating the dev data directory: %v", err), "")
		}
		defer os.RemoveAll(dir)
		cfg.Storage.Path = dir
		if err := cfg.Validate(); err != nil {
			return fail(2, err.Error(), "-dev-listen-address takes host:port, e.g. 127.0.0.1:8200")
		}
	} else {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fail(1, fmt.Sprintf("config file %s does not exist", *configPath), "pass the path of an HCL server config with -config")
			}
			return fail(1, err.Error(), "fix the config file; see the README for an example")
		}
	}
	if *logLevel != "" {
		cfg.LogLevel = *logLevel
	}
	if *inProcess {
		cfg.PluginsInProcess = true
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "keyraft",
		Level:  hclog.LevelFromString(cfg.LogLevel),
		Output: stderr,
	})
	var onReady func(*cluster.Node, string) error
	if *dev {
		onReady = func(node *cluster.Node, apiAddr string) error {
			res, err := devInit(ctx, node, *devToken)
			if err != nil {
				return err
			}
			printDevBanner(stdout, apiAddr, side.table(node, apiAddr), res)
			return nil
		}
	}
	if err := serve(ctx, cfg, *dev, onReady, logger); err != nil {
		hint := ""
		if *dev && errors.Is(err, syscall.EADDRINUSE) {
			hint = devPortsHelp
		}
		return fail(1, err.Error(), hint)
	}
	return 0
}

// serve assembles a node, its transit engine and its HTTP API from cfg and
// runs them until ctx ends.
// onReady, when set, runs once the API is serving (dev mode initializes
// and unseals there); its error stops the node.
func serve(ctx context.Context, cfg *config.Config, dev bool, onReady func(*cluster.Node, string) error, logger hclog.Logger) error {
	l := cfg.Listeners[0]
	// The retry_join TLS files are read now, so that a wrong one stops the
	// start instead of every join attempt.
	joinHTTP, err := joinClient(cfg.Storage.RetryJoin)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", l.Address)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", l.Address, err)
	}
	defer ln.Close()
	apiAddr := cfg.APIAddr
	if u, err := url.Parse(apiAddr); err == nil && u.Port() == "0" {
		// Port 0 asked the OS for a port: advertise the one it gave.
		u.Host = ln.Addr().String()
		apiAddr = u.String()
	}
	if !l.TLSDisable {
		cert, err := tls.LoadX509KeyPair(l.TLSCertFile, l.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("loading TLS certificate for %s: %v", l.Address, err)
		}
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if !l.TLSDisableClientCerts {
			// Asked, never required: cert auth login verifies the chain
			// against its roles' CAs, as Vault's listener does.
			tc.ClientAuth = tls.RequestClientCert
		}
		ln = tls.NewListener(ln, tc)
	}

	nc := cluster.DefaultConfig()
	nc.NodeID = cfg.Storage.NodeID
	nc.DataDir = cfg.Storage.Path
	nc.BindAddr = l.ClusterAddress
	if u, err := url.Parse(cfg.ClusterAddr); err == nil && u.Port() != "0" {
		nc.AdvertiseAddr = u.Host
	}
	if cfg.Storage.SnapshotThreshold > 0 {
		nc.SnapshotThreshold = uint64(cfg.Storage.SnapshotThreshold)
	}
	if d, err := time.ParseDuration(cfg.Storage.SnapshotInterval); err == nil {
		nc.SnapshotInterval = d
	}
	if cfg.ClusterName != "" {
		nc.ClusterName = cfg.ClusterName
	}
	nc.Logger = logger.Named("cluster")
	nc.APIAddr = apiAddr
	nc.Version = version.Version // told to peers through gossip (sys/members, ha-status)
	if err := applyClusterConfig(&nc, cfg); err != nil {
		return err
	}
	if dev {
		nc.HeartbeatTimeout, nc.ElectionTimeout, nc.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	}
	plugins, err := setUpPlugins(ctx, cfg, &nc, logger.Named("plugin"))
	if err != nil {
		return err
	}
	defer plugins.Close()
	node, err := cluster.New(nc)
	if err != nil {
		return err
	}
	defer node.Shutdown()
	plugins.node.Store(node)
	engine := transit.New(node, logger.Named("transit"))
	engine.Backends = plugins.manager
	node.OnSeal(engine.Purge)
	startLifecycle(ctx, node, engine, logger.Named("lifecycle"))
	configDevices, err := configAuditDevices(cfg)
	if err != nil {
		return err
	}
	devices := &audit.Devices{Source: node, CursorDir: filepath.Join(cfg.Storage.Path, "audit-cursors"),
		Node: nc.NodeID, IsLeader: node.IsLeader, Committed: node.CommittedAuditCursor, Logger: logger.Named("audit")}
	devCtx, stopDevices := context.WithCancel(ctx)
	defer func() {
		stopDevices()
		// What this node delivered last, so compaction and the next
		// deliverer know (best effort: the node may be sealed or alone).
		last := devices.Statuses()
		devices.Stop()
		fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		node.RecordAuditCursors(fctx, last, nil)
		cancel()
	}()
	go syncAuditDevices(devCtx, node, devices, configDevices, logger.Named("audit"))
	api, err := transport.NewAPI(transport.Config{
		Node: node, Transit: engine, APIAddr: apiAddr, Audit: node.AuditLog(),
		Plugins: plugins.manager, PluginDirectory: cfg.PluginDirectory,
		ConfigDevices: configDevices, AuditSinks: devices.Statuses,
		MaxRequestSize: l.MaxRequestSize, Logger: logger.Named("http"), JoinHTTPClient: joinHTTP,
		MaxBatchItems: l.MaxBatchItems, MaxTokenBatchItemsInFlight: l.MaxTokenBatchItemsInFlight,
		// The report's token, policy and namespace findings, beside the keys'.
		HygieneChecks: []transport.HygieneCheck{transport.AccessHygiene(node, nil)},
	})
	if err != nil {
		return err
	}
	srv := newAPIServer(l, api, logger.Named("http"))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("keyraft server started", "api_addr", apiAddr, "cluster_addr", node.ClusterAddr(), "node_id", nc.NodeID)

	if onReady != nil {
		if err := onReady(node, apiAddr); err != nil {
			return fmt.Errorf("starting dev mode: %v", err)
		}
	}

	go autoRotate(ctx, node, engine, logger.Named("rotate"))
	go node.TidyLoop(ctx, time.Minute) // expired tokens, grants and break-glass sessions (access.Service.Tidy)
	go plugins.warmUp(ctx, node)
	if len(cfg.Storage.RetryJoin) > 0 && !node.IsMember() {
		var addrs []string
		for _, r := range cfg.Storage.RetryJoin {
			addrs = append(addrs, r.LeaderAPIAddr)
		}
		jlog := logger.Named("join")
		go (&transport.Joiner{Node: node, Client: joinHTTP}).RetryJoin(ctx, addrs, jlog.Info)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("API server stopped: %v", err)
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	// Encryptions answered since the last periodic flush count toward
	// their versions' nonce budgets: commit them before the node stops.
	if !node.Sealed() {
		if err := engine.FlushUsage(sctx); err != nil {
			logger.Warn("encryption counts of the last seconds not committed", "error", err)
		}
	}
	return nil
}

// joinClient is the HTTP client of this node's joins (retry_join and
// sys/storage/raft/join) when a retry_join block has TLS settings, nil
// (the default client, the system's roots) when none has. A member a
// block names is reached with that block's settings; any other address,
// such as the leader a member points to, with those of the first block
// that has settings, without its leader_tls_servername unless every such
// block names the same server.
func joinClient(joins []config.RetryJoin) (*http.Client, error) {
	t := joinTransport{byHost: map[string]http.RoundTripper{}}
	var first *tls.Config
	names := map[string]bool{}
	for i := range joins {
		tc, err := joins[i].TLSConfig()
		if err != nil {
			return nil, err
		}
		u, err := url.Parse(joins[i].LeaderAPIAddr)
		if err != nil {
			return nil, err // config.Validate checked it
		}
		if tc == nil {
			t.byHost[u.Host] = http.DefaultTransport
			continue
		}
		t.byHost[u.Host] = transportWith(tc)
		names[tc.ServerName] = true
		if first == nil {
			first = tc
		}
	}
	if first == nil {
		return nil, nil
	}
	fallback := first.Clone()
	if len(names) > 1 {
		fallback.ServerName = ""
	}
	t.fallback = transportWith(fallback)
	return &http.Client{Timeout: 30 * time.Second, Transport: t}, nil
}

// joinTransport sends a join's request with the TLS settings of the
// retry_join block that names its host.
type joinTransport struct {
	byHost   map[string]http.RoundTripper
	fallback http.RoundTripper
}

func (t joinTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if rt, ok := t.byHost[r.URL.Host]; ok {
		return rt.RoundTrip(r)
	}
	return t.fallback.RoundTrip(r)
}

func transportWith(tc *tls.Config) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return tr
}

// newAPIServer is the HTTP server of listener l: its timeouts are the
// listener's (Vault's http_*_timeout, defaults filled in by
// config.Validate), so that a client that has not sent its whole request,
// and so is not authenticated yet, holds a connection only that long.
func newAPIServer(l config.Listener, h http.Handler, logger hclog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.HTTPReadHeaderTimeout,
		ReadTimeout:       l.HTTPReadTimeout,
		WriteTimeout:      l.HTTPWriteTimeout,
		IdleTimeout:       l.HTTPIdleTimeout,
		ErrorLog:          logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
}

// devInit initializes and unseals a dev node (a one-node cluster of its
// own); both are recorded like the requests they stand in for.
func devInit(ctx context.Context, node *cluster.Node, token string) (*cluster.InitResult, error) {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id := node.Config().NodeID
	initEv := &audit.Event{Time: time.Now().UTC(), Node: id, Operation: "sys/init", Identity: "dev-mode", Outcome: audit.Allowed}
	res, err := node.DevInit(audit.WithEvent(wctx, initEv), token)
	if err != nil {
		return nil, err
	}
	err = node.AuditLog().Record(wctx, &audit.Event{Time: time.Now().UTC(), Node: id,
		Operation: "sys/unseal", Identity: "dev-mode", Outcome: audit.Allowed, Status: 200})
	return res, err
}

// autoRotate rotates keys whose auto_rotate_period has passed. Only the
// leader does it, so each rotation happens once.
func autoRotate(ctx context.Context, node *cluster.Node, engine *transit.Engine, log hclog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !node.IsLeader() || node.Sealed() {
			continue
		}
		if _, err := engine.RotateDue(ctx); err != nil {
			log.Warn("auto-rotation incomplete", "error", err)
		}
	}
}

func printDevBanner(w io.Writer, apiAddr, ports string, res *cluster.InitResult) {
	fmt.Fprintf(w, `==> keyraft server started in dev mode. Log data will stream in below.

WARNING! Dev mode is enabled. Data lives in a temporary directory that is
removed on exit, and the node is already initialized and unsealed with the
single unseal key below. Do not keep real keys in a dev server.

You may need to set the following environment variables:

    $ export KEYRAFT_ADDR='%[1]s'
    $ export VAULT_ADDR='%[1]s'

The node listens on these ports. -dev-listen-address=HOST:PORT sets the
API's; the others are the next two up, or other free ports when those are
taken:

%[4]s
The unseal key and root token are shown below in case you want to seal and
unseal the node or re-authenticate.

Unseal Key: %[2]s
Root Token: %[3]s

`, apiAddr, base64.StdEncoding.EncodeToString(res.Keys[0]), res.RootToken, ports)
}

// configAuditDevices turns the config's audit blocks into devices.
func configAuditDevices(cfg *config.Config) ([]audit.Device, error) {
	var out []audit.Device
	for _, a := range cfg.Audit {
		// A device of a node's own config file is that node's: it
		// delivers the whole log to it (Local).
		d := audit.Device{Name: a.Name, Type: a.Type, Path: a.Path, MaxBytes: a.MaxBytes, Keep: int(a.Keep),
			Network: a.Network, Address: a.Address, Tag: a.Tag, Framing: a.Framing, Local: true}
		if d.Type == "file" && !filepath.IsAbs(d.Path) {
			abs, err := filepath.Abs(d.Path)
			if err != nil {
				return nil, err
			}
			d.Path = abs
		}
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("audit %q: %v", a.Name, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// syncAuditDevices keeps the running audit devices equal to those of the
// config plus those configured through sys/audit (replicated, so every
// node runs them), and once a second commits how far each has delivered.
// While sealed, the API devices last seen keep running. No device can
// delay a request: each follows the committed log.
func syncAuditDevices(ctx context.Context, node *cluster.Node, devices *audit.Devices, fromConfig []audit.Device, log hclog.Logger) {
	var fromAPI []audit.Device
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		list, err := node.AuditDevices()
		listed := err == nil
		if listed {
			fromAPI = list
		}
		all := append([]audit.Device(nil), fromConfig...)
		for _, d := range fromAPI {
			if !slices.ContainsFunc(fromConfig, func(c audit.Device) bool { return c.Name == d.Name }) {
				all = append(all, d)
			}
		}
		devices.Sync(ctx, all)
		if !node.Sealed() {
			var names []string // nil: remove no record (the API's devices are unknown)
			if listed {
				names = make([]string, 0, len(all))
				for _, d := range all {
					names = append(names, d.Name)
				}
			}
			if err := node.RecordAuditCursors(ctx, devices.Statuses(), names); err != nil && ctx.Err() == nil {
				log.Debug("audit cursors not committed yet", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// applyClusterConfig copies the storage block's cluster settings (gossip,
// lease, autopilot, the operator's own cluster-port certificates) into
// the node configuration.
func applyClusterConfig(nc *cluster.Config, cfg *config.Config) error {
	st := cfg.Storage
	nc.GossipAddr = st.GossipAddress
	nc.GossipAdvertiseAddr = st.GossipAdvertiseAddress
	if st.LeaderContactLease != "" {
		d, err := time.ParseDuration(st.LeaderContactLease)
		if err != nil {
			return err
		}
		nc.LeaderContactLease = d
	}
	if ap := st.Autopilot; ap != nil {
		if ap.CleanupDeadServers != nil {
			nc.Autopilot.CleanupDeadServers = *ap.CleanupDeadServers
		}
		if ap.MinQuorum > 0 {
			nc.Autopilot.MinQuorum = ap.MinQuorum
		}
		for _, d := range []struct {
			in  string
			out *time.Duration
		}{{ap.DeadServerLastContactThreshold, &nc.Autopilot.DeadServerLastContactThreshold}, {ap.ServerStabilizationTime, &nc.Autopilot.ServerStabilizationTime}} {
			if d.in == "" {
				continue
			}
			v, err := time.ParseDuration(d.in)
			if err != nil {
				return err
			}
			*d.out = v
		}
	}
	if err := applySealConfig(nc, cfg); err != nil {
		return err
	}
	if st.ClusterTLSCertFile != "" {
		var id link.Identity
		for _, f := range []struct {
			path string
			out  *[]byte
		}{{st.ClusterTLSCertFile, &id.CertPEM}, {st.ClusterTLSKeyFile, &id.KeyPEM}, {st.ClusterTLSCAFile, &id.CAPEM}} {
			b, err := os.ReadFile(f.path)
			if err != nil {
				return fmt.Errorf("reading the cluster TLS files: %v", err)
			}
			*f.out = b
		}
		if _, _, err := id.TLS(); err != nil {
			return fmt.Errorf("cluster TLS files: %v", err)
		}
		nc.TLS = &id
	}
	return nil
}

// applySealConfig sets the node's auto-unseal seal from a seal "pkcs11"
// block. The HSM is opened by the node, lazily and with retries: a wrong
// PIN or a missing token leaves the node sealed (one log line per
// distinct error), never stops it.
func applySealConfig(nc *cluster.Config, cfg *config.Config) error {
	if p := cfg.Seal.PKCS11; cfg.Seal.Type == "pkcs11" && p != nil {
		nc.AutoSealType, nc.AutoSeal = "pkcs11", pkcs11Opener(p)
	}
	if old := cfg.OldSeal; old != nil {
		// A seal migration: the old seal block is marked disabled.
		switch {
		case old.Type == "shamir" && nc.AutoSeal != nil:
			nc.MigrateFromShamir = true
		case old.Type == "pkcs11" && old.PKCS11 != nil && nc.AutoSeal == nil:
			nc.OldAutoSealType, nc.OldAutoSeal = "pkcs11", pkcs11Opener(old.PKCS11)
		default:
			return fmt.Errorf("seal migration from %s to %s is not supported", old.Type, cfg.Seal.Type)
		}
	}
	return nil
}

// pkcs11Opener opens the HSM of a seal "pkcs11" block; the PIN is read
// at every open (KEYRAFT_HSM_PIN may be set after a failed start).
func pkcs11Opener(p *config.PKCS11Seal) func(context.Context) (seal.Seal, error) {
	return func(ctx context.Context) (seal.Seal, error) {
		pin, err := p.ResolvePIN(nil, nil)
		if err != nil {
			return nil, err
		}
		return pkcs11.Open(pkcs11.Config{
			Lib: p.Lib, Slot: p.Slot, TokenLabel: p.TokenLabel, PIN: pin,
			KeyLabel: p.KeyLabel, Mechanism: p.Mechanism, GenerateKey: p.GenerateKey,
		})
	}
}
