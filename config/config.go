package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Every error returned by Parse, Load and Validate wraps
// exactly one of them (test with errors.Is), except the I/O errors of Load,
// which come from the os package unchanged. The message of a returned error
// is one line, ready to print after "error: ", and starts with the file and
// position when the problem has one.
var (
	// ErrInvalid: the file is not valid HCL, or names an unknown block or
	// argument, or a value is missing, malformed or out of range.
	ErrInvalid = errors.New("config: invalid configuration")
	// ErrUnsupported: the file is valid for Vault but asks for something
	// keyraft does not do (a storage type other than "raft", a seal type
	// other than "shamir" and "pkcs11", a PKCS#11 mechanism other than
	// AES-GCM and RSA-OAEP, a listener type other than "tcp").
	ErrUnsupported = errors.New("config: not supported")
)

// DefaultMaxRequestSize is the request body limit of a listener whose
// max_request_size is absent or 0: 32 MiB.
const DefaultMaxRequestSize int64 = 32 << 20

// Defaults of the listener's HTTP timeouts, as in Vault: a listener
// whose http_*_timeout is absent or 0 uses these. The write timeout has
// none: 0 means no limit on writing an answer (audit streams and exports
// are long).
const (
	DefaultHTTPReadHeaderTimeout = 10 * time.Second
	DefaultHTTPReadTimeout       = 30 * time.Second
	DefaultHTTPIdleTimeout       = 5 * time.Minute
)

// Defaults of the listener's batch limits; the same numbers as the API
// server's own (transport.DefaultMaxBatchItems and
// transport.DefaultMaxTokenBatchItemsInFlight, which a test of the server
// command compares), kept here so that this package stays a leaf.
const (
	DefaultMaxBatchItems              = 10000
	DefaultMaxTokenBatchItemsInFlight = 2 * DefaultMaxBatchItems
)

// DefaultListenAddress is the address of Dev("") and of a listener block
// without an address, as in Vault.
const DefaultListenAddress = "127.0.0.1:8200"

// Config is a server configuration. The zero values of optional fields are
// replaced by their defaults in Validate.
type Config struct {
	Storage   Storage
	Listeners []Listener // at least one; the first decides the derived addresses
	// Seal is the seal in use: the seal block that is not disabled, or
	// Shamir when there is none.
	Seal Seal
	// OldSeal is the seal a seal migration moves away from: the seal block
	// with disabled = true. nil when there is none, as outside a
	// migration. It and Seal are not both Shamir.
	OldSeal *Seal

	// APIAddr is the URL other nodes and clients are told to use for the
	// HTTP API ("https://10.0.0.5:8200"). Default: derived from the first
	// listener.
	APIAddr string
	// ClusterAddr is the URL other nodes use for cluster traffic (Raft,
	// forwarding), always https ("https://10.0.0.5:8201"). Default: derived
	// from the first listener's ClusterAddress.
	ClusterAddr string

	PluginDirectory string // where plugin executables live; "" = none
	// DefaultCryptoBackend names the crypto backend of keys created
	// without one: "soft" (when empty), "pkcs11", a registered plugin, or
	// "builtin" for the node's own process.
	DefaultCryptoBackend string
	// PluginsInProcess runs the built-in storage and crypto backends inside
	// the node's process instead of as plugin processes (for debugging and
	// for measuring what the process boundary costs).
	PluginsInProcess bool
	DisableMlock     bool   // accepted for Vault compatibility; no effect
	LogLevel         string // trace, debug, info, warn or error; default info
	ClusterName      string // a name shown by status; "" lets the server choose
	Audit            []AuditSink
}

// Storage is the storage "raft" block.
type Storage struct {
	Type   string // only "raft"
	Path   string // data directory of this node; required
	NodeID string // this node's Raft ID; required
	// SnapshotThreshold is how many Raft log entries trigger an automatic
	// snapshot; 0 keeps the server's default.
	SnapshotThreshold int64
	// SnapshotInterval is how often Raft checks whether to snapshot, as a
	// Go duration ("30s"); "" keeps the server's default.
	SnapshotInterval string
	RetryJoin        []RetryJoin // any number
	// Plugin is the storage plugin holding the state machine's records:
	// "bolt" (built in; also when empty) or a file in plugin_directory, then
	// pinned by PluginSHA256 (hex). The catalog cannot name it: the
	// catalog lives in the storage.
	Plugin       string
	PluginSHA256 string

	// GossipAddress is the host:port gossip (memberlist, UDP and TCP)
	// listens on ("127.0.0.1:8202"). "" lets the server derive it: the host
	// of the cluster port and the next port up.
	GossipAddress string
	// GossipAdvertiseAddress is the host:port peers are told to gossip
	// with; it must name a specific host. "" lets the server use the
	// address gossip is bound to.
	GossipAdvertiseAddress string
	// LeaderContactLease bounds how long a follower that has heard nothing
	// from the leader keeps serving, as a positive Go duration ("2s"); ""
	// keeps the server's default. The server also wants it to be at least
	// Raft's heartbeat timeout.
	LeaderContactLease string
	// Autopilot is the autopilot block; nil when the file has none, and
	// then every autopilot setting keeps the server's default.
	Autopilot *Autopilot

	// ClusterTLSCertFile, ClusterTLSKeyFile and ClusterTLSCAFile are the
	// operator's own PEM certificate, key and CA for the cluster port, used
	// instead of the ones the cluster CA issues. All three or none; Validate
	// does not read the files.
	ClusterTLSCertFile string
	ClusterTLSKeyFile  string
	ClusterTLSCAFile   string
}

// maxMinQuorum bounds autopilot's min_quorum far above any real cluster.
const maxMinQuorum = 1 << 16

// Autopilot is the autopilot block of storage "raft": how the leader
// promotes healthy non-voters and removes dead voters. A zero field was not
// set and keeps the server's default.
type Autopilot struct {
	// CleanupDeadServers says whether voters dead for longer than
	// DeadServerLastContactThreshold are removed; nil when not set.
	CleanupDeadServers *bool
	// DeadServerLastContactThreshold is how long a voter must have been
	// out of contact before it counts as dead, as a Go duration of at
	// least 1s ("24h"); "" when not set.
	DeadServerLastContactThreshold string
	// MinQuorum is the number of voters cleanup never goes below; at least
	// 1, or 0 when not set.
	MinQuorum int
	// ServerStabilizationTime is how long a non-voter must be healthy
	// before it is promoted, as a Go duration of at least 0s ("10s"); ""
	// when not set.
	ServerStabilizationTime string
}

// RetryJoin is one retry_join block: a node to ask for admission to an
// existing cluster at startup.
type RetryJoin struct {
	LeaderAPIAddr string // http(s) URL of a cluster member's API

	// How to reach an https member, with Vault's names: the PEM file of
	// the CA that signed the members' API certificates (instead of the
	// system's roots), a client certificate and its key to present (both
	// or neither), and the name to check in the member's certificate
	// instead of the host of LeaderAPIAddr. Validate checks that they go
	// with an https address and do not read the files; TLSConfig does.
	LeaderCACertFile     string
	LeaderClientCertFile string
	LeaderClientKeyFile  string
	LeaderTLSServerName  string
}

// Listener is one listener "tcp" block.
type Listener struct {
	Type string // only "tcp"
	// Address is the host:port the API listens on. Default 127.0.0.1:8200.
	Address string
	// ClusterAddress is the host:port cluster traffic listens on.
	// Default: the host of Address, port + 1 (port 0 stays 0).
	ClusterAddress string
	TLSDisable     bool
	TLSCertFile    string // PEM; required unless TLSDisable
	TLSKeyFile     string // PEM; required unless TLSDisable
	// TLSDisableClientCerts stops the listener from asking clients for a
	// certificate (Vault's tls_disable_client_certs); by default it asks,
	// and cert auth checks what it gets against its roles' CAs.
	TLSDisableClientCerts bool
	// MaxRequestSize limits request bodies, in bytes. 0 means
	// DefaultMaxRequestSize; negative is an error.
	MaxRequestSize int64

	// HTTPReadHeaderTimeout, HTTPReadTimeout and HTTPIdleTimeout are
	// Vault's http_read_header_timeout, http_read_timeout and
	// http_idle_timeout: how long a client may take to send a request's
	// headers, the whole request (headers and body), and how long a
	// keep-alive connection may sit idle. 0 means the default
	// (DefaultHTTPReadHeaderTimeout, DefaultHTTPReadTimeout,
	// DefaultHTTPIdleTimeout); negative is an error.
	HTTPReadHeaderTimeout time.Duration
	HTTPReadTimeout       time.Duration
	HTTPIdleTimeout       time.Duration
	// HTTPWriteTimeout is Vault's http_write_timeout: how long writing an
	// answer may take, counted from the end of the request's headers. 0
	// means no limit; negative is an error.
	HTTPWriteTimeout time.Duration

	// MaxBatchItems limits the batch_input items of one request. 0 means
	// DefaultMaxBatchItems; negative is an error.
	MaxBatchItems int
	// MaxTokenBatchItemsInFlight limits the batch items that the requests
	// of one token may have in flight at once (a request without
	// batch_input counts one). 0 means DefaultMaxTokenBatchItemsInFlight;
	// negative is an error, and so is a value below MaxBatchItems (a full
	// batch could never run).
	MaxTokenBatchItemsInFlight int
}

// AuditSink is one audit block: a destination outside the cluster that
// receives every committed audit event, each on its own cursor:
//
//	audit "file" {
//	  path      = "/var/log/keyraft/audit.log"
//	  max_bytes = 104857600
//	  keep      = 10
//	}
//	audit "socket" {
//	  network = "tcp"
//	  address = "127.0.0.1:9090"
//	  framing = "acked" # the default; "lines" for a plain line collector
//	}
type AuditSink struct {
	Type     string // file, syslog or socket
	Name     string // defaults to the type; unique
	Path     string // file
	MaxBytes int64  // file: rotate past this size (0: never)
	Keep     int64  // file: rotated files to keep (default 5)
	Network  string // syslog ("" = local daemon), socket (tcp, udp, unix)
	Address  string // syslog, socket
	Tag      string // syslog (default "keyraft")
	Framing  string // socket: "acked" (default over tcp, unix) or "lines"
}

// Seal is a seal block: how the root key is protected.
type Seal struct {
	Type string // "shamir" (default when empty) or "pkcs11"
	// PKCS11 is the body of a seal "pkcs11" block; nil for Shamir.
	PKCS11 *PKCS11Seal
}

// Load reads the file at path, parses it and validates the result.
// Positions in errors name path as given.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(src, path)
}

// Dev returns the configuration of a development server: raft storage with
// node ID "dev-node", one plain-HTTP tcp listener on listenAddr
// (DefaultListenAddress when empty), the Shamir seal. Storage.Path is left
// empty: the caller sets it to a fresh directory, then calls Validate to fill
// in the derived addresses.
func Dev(listenAddr string) *Config {
	if listenAddr == "" {
		listenAddr = DefaultListenAddress
	}
	return &Config{
		Storage:   Storage{Type: "raft", NodeID: "dev-node"},
		Listeners: []Listener{{Type: "tcp", Address: listenAddr, TLSDisable: true}},
		Seal:      Seal{Type: "shamir"},
		LogLevel:  "info",
	}
}

// Validate checks c and fills in the defaults of the optional fields it
// leaves empty: the seal types and the PKCS#11 mechanism (which it also
// turns into its name), the log level, each listener's address, cluster
// address and request size limit, and the advertised APIAddr and
// ClusterAddr. Calling it again changes nothing. The error wraps ErrInvalid
// or ErrUnsupported.
func (c *Config) Validate() error {
	if err := c.Storage.validate(); err != nil {
		return err
	}
	if len(c.Listeners) == 0 {
		return invalid("", `at least one listener "tcp" block is required`)
	}
	seen := map[string]bool{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if err := l.validate(fmt.Sprintf("listener[%d]", i)); err != nil {
			return err
		}
		for _, a := range []string{l.Address, l.ClusterAddress} {
			if seen[a] && !strings.HasSuffix(a, ":0") {
				return invalid(fmt.Sprintf("listener[%d]", i), "address %s is used by two listeners", a)
			}
			seen[a] = true
		}
	}
	if g := c.Storage.GossipAddress; seen[g] && !strings.HasSuffix(g, ":0") {
		return invalid("storage.gossip_address", `storage "raft": gossip_address %s is also a listener's address`, g)
	}
	names := map[string]bool{}
	for i := range c.Audit {
		if err := c.Audit[i].validate(fmt.Sprintf("audit[%d]", i)); err != nil {
			return err
		}
		if names[c.Audit[i].Name] {
			return invalid(fmt.Sprintf("audit[%d]", i), "audit %q: two audit blocks are named %q; set name to tell them apart", c.Audit[i].Type, c.Audit[i].Name)
		}
		names[c.Audit[i].Name] = true
	}
	if err := c.validateSeals(); err != nil {
		return err
	}
	if c.Storage.Plugin != "" && c.Storage.Plugin != "bolt" {
		if c.PluginDirectory == "" {
			return invalid("storage.plugin", `storage "raft": plugin %q is not built in, so plugin_directory must be set`, c.Storage.Plugin)
		}
		if c.Storage.PluginSHA256 == "" {
			return invalid("storage.plugin_sha256", `storage "raft": plugin %q needs plugin_sha256 (the sha256sum of the file)`, c.Storage.Plugin)
		}
	}
	switch lvl := strings.ToLower(c.LogLevel); lvl {
	case "":
		c.LogLevel = "info"
	case "trace", "debug", "info", "warn", "error":
		c.LogLevel = lvl
	default:
		return invalid("log_level", "log_level %q is not one of trace, debug, info, warn, error", c.LogLevel)
	}
	return c.deriveAddrs()
}

func (s *Storage) validate() error {
	if s.Type == "" {
		return invalid("", `a storage "raft" block is required`)
	}
	if err := checkStorageType(s.Type); err != nil {
		return err
	}
	if s.Path == "" {
		return invalid("storage", `storage "raft": path is required`)
	}
	if s.NodeID == "" {
		return invalid("storage", `storage "raft": node_id is required`)
	}
	if !printable(s.NodeID) {
		return invalid("storage.node_id", `storage "raft": node_id %q has spaces or control characters`, s.NodeID)
	}
	if s.SnapshotInterval != "" {
		if d, err := time.ParseDuration(s.SnapshotInterval); err != nil || d < time.Second {
			return invalid("storage.snapshot_interval", `storage "raft": snapshot_interval %q must be a duration of at least 1s, such as "30s"`, s.SnapshotInterval)
		}
	}
	for i, j := range s.RetryJoin {
		field := fmt.Sprintf("storage.retry_join[%d]", i)
		if j.LeaderAPIAddr == "" {
			return invalid(field, `storage "raft": retry_join: leader_api_addr is required`)
		}
		if err := checkURL(j.LeaderAPIAddr, false); err != nil {
			return invalid(field+".leader_api_addr", `storage "raft": retry_join: leader_api_addr %s`, err)
		}
		if err := j.validateTLS(field); err != nil {
			return err
		}
	}
	if s.GossipAddress != "" {
		if _, _, err := splitHostPort(s.GossipAddress); err != nil {
			return invalid("storage.gossip_address", `storage "raft": gossip_address %s`, err)
		}
	}
	if s.GossipAdvertiseAddress != "" {
		host, port, err := splitHostPort(s.GossipAdvertiseAddress)
		switch {
		case err != nil:
			return invalid("storage.gossip_advertise_address", `storage "raft": gossip_advertise_address %s`, err)
		case unspecified(host):
			return invalid("storage.gossip_advertise_address", `storage "raft": gossip_advertise_address %q names no specific host`, s.GossipAdvertiseAddress)
		case port == 0:
			return invalid("storage.gossip_advertise_address", `storage "raft": gossip_advertise_address %q names no specific port`, s.GossipAdvertiseAddress)
		}
	}
	if s.LeaderContactLease != "" {
		if d, err := time.ParseDuration(s.LeaderContactLease); err != nil || d <= 0 {
			return invalid("storage.leader_contact_lease", `storage "raft": leader_contact_lease %q must be a positive duration, such as "2s"`, s.LeaderContactLease)
		}
	}
	if s.Autopilot != nil {
		if err := s.Autopilot.validate("storage.autopilot"); err != nil {
			return err
		}
	}
	return s.checkClusterTLS()
}

// validate checks the autopilot settings that are set. field names the
// block in errors ("storage.autopilot").
func (a *Autopilot) validate(field string) error {
	if a.DeadServerLastContactThreshold != "" {
		if d, err := time.ParseDuration(a.DeadServerLastContactThreshold); err != nil || d < time.Second {
			return invalid(field+".dead_server_last_contact_threshold", `storage "raft": autopilot: dead_server_last_contact_threshold %q must be a duration of at least 1s, such as "24h"`, a.DeadServerLastContactThreshold)
		}
	}
	if a.ServerStabilizationTime != "" {
		if d, err := time.ParseDuration(a.ServerStabilizationTime); err != nil || d < 0 {
			return invalid(field+".server_stabilization_time", `storage "raft": autopilot: server_stabilization_time %q must be a duration of at least 0s, such as "10s"`, a.ServerStabilizationTime)
		}
	}
	if a.MinQuorum < 0 || a.MinQuorum > maxMinQuorum {
		return invalid(field+".min_quorum", `storage "raft": autopilot: min_quorum must be between 1 and %d, not %d`, maxMinQuorum, a.MinQuorum)
	}
	return nil
}

// checkClusterTLS checks that the cluster port's certificate, key and CA
// are given all together or not at all, and names the missing ones.
func (s *Storage) checkClusterTLS() error {
	files := []struct{ name, value string }{
		{"cluster_tls_cert_file", s.ClusterTLSCertFile},
		{"cluster_tls_key_file", s.ClusterTLSKeyFile},
		{"cluster_tls_ca_file", s.ClusterTLSCAFile},
	}
	var given string
	var missing []string
	for _, f := range files {
		switch {
		case f.value == "":
			missing = append(missing, f.name)
		case given == "":
			given = f.name
		}
	}
	if given == "" || len(missing) == 0 {
		return nil
	}
	verb := "is"
	if len(missing) > 1 {
		verb = "are"
	}
	return invalid("storage."+given, `storage "raft": cluster_tls_cert_file, cluster_tls_key_file and cluster_tls_ca_file go together; %s %s missing`,
		strings.Join(missing, " and "), verb)
}

func checkStorageType(t string) error {
	if t != "raft" {
		return unsupported("storage.type", "storage type %q is not supported; only \"raft\" is", t)
	}
	return nil
}

func checkListenerType(field, t string) error {
	if t != "tcp" {
		return unsupported(field+".type", "listener type %q is not supported; only \"tcp\" is", t)
	}
	return nil
}

// validate checks l and fills in its defaults. field names l in errors
// ("listener[0]").
func (l *Listener) validate(field string) error {
	if l.Type == "" {
		return invalid(field, `listener has no type; write listener "tcp" { … }`)
	}
	if err := checkListenerType(field, l.Type); err != nil {
		return err
	}
	if l.Address == "" {
		l.Address = DefaultListenAddress
	}
	host, port, err := splitHostPort(l.Address)
	if err != nil {
		return invalid(field+".address", `listener "tcp": address %s`, err)
	}
	name := fmt.Sprintf("listener %q on %s", l.Type, l.Address)
	if l.ClusterAddress == "" {
		if port != 0 {
			port++
		}
		if port > 65535 {
			return invalid(field+".address", "%s: port+1 cannot be the cluster port; set cluster_address", name)
		}
		l.ClusterAddress = net.JoinHostPort(host, strconv.Itoa(port))
	} else if _, _, err := splitHostPort(l.ClusterAddress); err != nil {
		return invalid(field+".cluster_address", "%s: cluster_address %s", name, err)
	}
	if l.ClusterAddress == l.Address && port != 0 {
		return invalid(field+".cluster_address", "%s: cluster_address must differ from address", name)
	}
	if !l.TLSDisable && (l.TLSCertFile == "" || l.TLSKeyFile == "") {
		return invalid(field, "%s: tls_cert_file and tls_key_file are required unless tls_disable is set", name)
	}
	if (l.TLSCertFile == "") != (l.TLSKeyFile == "") {
		return invalid(field, "%s: tls_cert_file and tls_key_file go together", name)
	}
	switch {
	case l.MaxRequestSize < 0:
		return invalid(field+".max_request_size", "%s: max_request_size must not be negative", name)
	case l.MaxRequestSize == 0:
		l.MaxRequestSize = DefaultMaxRequestSize
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"http_read_header_timeout", &l.HTTPReadHeaderTimeout, DefaultHTTPReadHeaderTimeout},
		{"http_read_timeout", &l.HTTPReadTimeout, DefaultHTTPReadTimeout},
		{"http_write_timeout", &l.HTTPWriteTimeout, 0},
		{"http_idle_timeout", &l.HTTPIdleTimeout, DefaultHTTPIdleTimeout},
	} {
		switch {
		case *d.v < 0:
			return invalid(field+"."+d.name, "%s: %s must not be negative", name, d.name)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	inFlightDefaulted := l.MaxTokenBatchItemsInFlight == 0
	for _, n := range []struct {
		name string
		v    *int
		def  int
	}{
		{"max_batch_items", &l.MaxBatchItems, DefaultMaxBatchItems},
		{"max_token_batch_items_in_flight", &l.MaxTokenBatchItemsInFlight, DefaultMaxTokenBatchItemsInFlight},
	} {
		switch {
		case *n.v < 0:
			return invalid(field+"."+n.name, "%s: %s must not be negative", name, n.name)
		case *n.v == 0:
			*n.v = n.def
		}
	}
	switch {
	case l.MaxTokenBatchItemsInFlight >= l.MaxBatchItems:
	case inFlightDefaulted:
		return invalid(field+".max_batch_items", "%s: max_batch_items (%d) is above max_token_batch_items_in_flight (%d, the default), so a full batch could never run; set max_token_batch_items_in_flight too",
			name, l.MaxBatchItems, l.MaxTokenBatchItemsInFlight)
	default:
		return invalid(field+".max_token_batch_items_in_flight", "%s: max_token_batch_items_in_flight (%d) must be at least max_batch_items (%d), or a full batch could never run",
			name, l.MaxTokenBatchItemsInFlight, l.MaxBatchItems)
	}
	return nil
}

// deriveAddrs fills in APIAddr and ClusterAddr from the first listener and
// checks them.
func (c *Config) deriveAddrs() error {
	l := c.Listeners[0]
	if c.APIAddr == "" {
		host, _, _ := net.SplitHostPort(l.Address)
		if unspecified(host) {
			return invalid("listener[0].address", "api_addr is required when the first listener binds every interface (%s)", l.Address)
		}
		scheme := "https"
		if l.TLSDisable {
			scheme = "http"
		}
		c.APIAddr = scheme + "://" + l.Address
	}
	if err := checkURL(c.APIAddr, false); err != nil {
		return invalid("api_addr", "api_addr %s", err)
	}
	if c.ClusterAddr == "" {
		host, port, _ := net.SplitHostPort(l.ClusterAddress)
		if unspecified(host) {
			u, _ := url.Parse(c.APIAddr)
			host = u.Hostname()
		}
		c.ClusterAddr = "https://" + net.JoinHostPort(host, port)
	}
	if err := checkURL(c.ClusterAddr, true); err != nil {
		return invalid("cluster_addr", "cluster_addr %s", err)
	}
	return nil
}

// splitHostPort checks that s is host:port with a numeric port and returns
// the parts. The error reads after the name of the field.
func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 || p[0] == '+' {
		return "", 0, fmt.Errorf("%q has an invalid port", s)
	}
	if !printable(host) {
		return "", 0, fmt.Errorf("%q has an invalid host", s)
	}
	return host, port, nil
}

// checkURL checks an advertised address. Cluster addresses must be https
// and carry a port. The error reads after the name of the field.
func checkURL(s string, cluster bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		(u.Path != "" && u.Path != "/") || !printable(s) {
		if cluster {
			return fmt.Errorf("%q is not a URL like https://10.0.0.5:8201", s)
		}
		return fmt.Errorf("%q is not a URL like https://10.0.0.5:8200", s)
	}
	switch {
	case cluster && u.Scheme != "https":
		return fmt.Errorf("%q must start with https:// (cluster traffic is always TLS)", s)
	case !cluster && u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must start with http:// or https://", s)
	case cluster && u.Port() == "":
		return fmt.Errorf("%q has no port", s)
	case unspecified(u.Hostname()):
		return fmt.Errorf("%q names no specific host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n > 65535 {
			return fmt.Errorf("%q has an invalid port", s)
		}
	}
	return nil
}

// unspecified reports whether host means "every interface".
func unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// printable reports whether s has no spaces and no control characters.
func printable(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// configError is an error with a one-line message that wraps a sentinel.
// field names the part of the configuration at fault ("listener[0].address",
// "storage"), so that Parse can put the file position in front.
type configError struct {
	kind  error
	field string
	msg   string
}

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return e.kind }

func invalid(field, format string, args ...any) error {
	return &configError{kind: ErrInvalid, field: field, msg: fmt.Sprintf(format, args...)}
}

func unsupported(field, format string, args ...any) error {
	return &configError{kind: ErrUnsupported, field: field, msg: fmt.Sprintf(format, args...)}
}

func (a *AuditSink) validate(field string) error {
	if a.Name == "" {
		a.Name = a.Type
	}
	if !printable(a.Name) || strings.ContainsAny(a.Name, "/\\") {
		return invalid(field+".name", "audit %q: name %q must be printable, without slashes", a.Type, a.Name)
	}
	switch a.Type {
	case "file":
		if a.Path == "" {
			return invalid(field, `audit "file": path is required`)
		}
		if a.Keep == 0 {
			a.Keep = 5
		}
	case "syslog":
		if a.Tag == "" {
			a.Tag = "keyraft"
		}
	case "socket":
		if a.Address == "" {
			return invalid(field, `audit "socket": address is required`)
		}
		if a.Network == "" {
			a.Network = "tcp"
		}
		if a.Network != "tcp" && a.Network != "udp" && a.Network != "unix" {
			return invalid(field+".network", `audit "socket": network %q is not one of tcp, udp, unix`, a.Network)
		}
		if a.Framing != "" && a.Framing != "acked" && a.Framing != "lines" {
			return invalid(field+".framing", `audit "socket": framing %q is not one of acked, lines`, a.Framing)
		}
	default:
		return unsupported(field+".type", "audit type %q is not supported; use file, syslog or socket", a.Type)
	}
	return nil
}
