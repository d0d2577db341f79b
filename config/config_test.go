package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseFile parses a testdata file under the name "keyraft.hcl", so that
// the expected messages read like the ones an operator sees.
func parseFile(t *testing.T, path string) (*Config, error) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(src, "keyraft.hcl")
}

func TestGoodConfigs(t *testing.T) {
	tests := []struct {
		file string
		want Config
	}{
		{"minimal.hcl", Config{
			Storage: Storage{Type: "raft", Path: "/var/lib/keyraft", NodeID: "node-1"},
			Listeners: []Listener{{Type: "tcp", Address: "127.0.0.1:8200", ClusterAddress: "127.0.0.1:8201",
				TLSDisable: true, MaxRequestSize: DefaultMaxRequestSize}},
			Seal:        Seal{Type: "shamir"},
			APIAddr:     "http://127.0.0.1:8200",
			ClusterAddr: "https://127.0.0.1:8201",
			LogLevel:    "info",
		}},
		{"vault.hcl", Config{
			Storage: Storage{Type: "raft", Path: "/opt/vault/data", NodeID: "vault-1", RetryJoin: []RetryJoin{
				{LeaderAPIAddr: "https://10.0.0.2:8200", LeaderCACertFile: "/etc/vault/tls/ca.crt",
					LeaderClientCertFile: "/etc/vault/tls/vault.crt", LeaderClientKeyFile: "/etc/vault/tls/vault.key",
					LeaderTLSServerName: "vault-2.internal"},
				{LeaderAPIAddr: "https://10.0.0.3:8200"}}},
			Listeners: []Listener{{Type: "tcp", Address: "0.0.0.0:8200", ClusterAddress: "0.0.0.0:8201",
				TLSCertFile: "/etc/vault/tls/vault.crt", TLSKeyFile: "/etc/vault/tls/vault.key", MaxRequestSize: 1 << 20}},
			Seal:            Seal{Type: "shamir"},
			APIAddr:         "https://10.0.0.1:8200",
			ClusterAddr:     "https://10.0.0.1:8201", // host of api_addr: the listener binds every interface
			PluginDirectory: "/etc/vault/plugins",
			DisableMlock:    true,
			LogLevel:        "info",
			ClusterName:     "prod-kms",
		}},
		{"derived.hcl", Config{
			Storage: Storage{Type: "raft", Path: "data", NodeID: "7"},
			Listeners: []Listener{{Type: "tcp", Address: "10.1.2.3:9200", ClusterAddress: "10.1.2.3:9201",
				TLSCertFile: "node.crt", TLSKeyFile: "node.key", MaxRequestSize: DefaultMaxRequestSize}},
			Seal:        Seal{Type: "shamir"},
			APIAddr:     "https://10.1.2.3:9200",
			ClusterAddr: "https://10.1.2.3:9201",
			LogLevel:    "info",
		}},
		{"bools.hcl", Config{
			Storage: Storage{Type: "raft", Path: "/data", NodeID: "n"},
			Listeners: []Listener{
				{Type: "tcp", Address: "127.0.0.1:8200", ClusterAddress: "127.0.0.1:8201", TLSDisable: true, MaxRequestSize: DefaultMaxRequestSize},
				{Type: "tcp", Address: "127.0.0.1:9300", ClusterAddress: "127.0.0.1:9301", TLSDisable: true, MaxRequestSize: DefaultMaxRequestSize},
			},
			Seal:         Seal{Type: "shamir"},
			APIAddr:      "http://127.0.0.1:8200",
			ClusterAddr:  "https://kms-1.internal:8201",
			DisableMlock: true,
			LogLevel:     "info",
		}},
		{"audit-sinks.hcl", Config{
			Storage: Storage{Type: "raft", Path: "/data", NodeID: "n"},
			Listeners: []Listener{{Type: "tcp", Address: "127.0.0.1:8200", ClusterAddress: "127.0.0.1:8201",
				TLSDisable: true, MaxRequestSize: DefaultMaxRequestSize}},
			Seal:        Seal{Type: "shamir"},
			APIAddr:     "http://127.0.0.1:8200",
			ClusterAddr: "https://127.0.0.1:8201",
			LogLevel:    "info",
			Audit: []AuditSink{
				{Type: "file", Name: "file", Path: "/var/log/keyraft/audit.log", MaxBytes: 104857600, Keep: 10},
				{Type: "socket", Name: "socket", Network: "tcp", Address: "127.0.0.1:9090"},
				{Type: "syslog", Name: "syslog", Tag: "keyraft"},
			},
		}},
		{"raft-cluster.hcl", Config{
			Storage: Storage{Type: "raft", Path: "/var/lib/keyraft", NodeID: "kms-2",
				RetryJoin: []RetryJoin{
					{LeaderAPIAddr: "https://10.0.0.1:8200"},
					{LeaderAPIAddr: "https://kms-3.internal:8200/"},
					{LeaderAPIAddr: "http://[fd00::4]"},
				},
				GossipAddress:          "0.0.0.0:8202",
				GossipAdvertiseAddress: "10.0.0.2:8202",
				LeaderContactLease:     "2s",
				Autopilot: &Autopilot{CleanupDeadServers: new(false), DeadServerLastContactThreshold: "24h",
					MinQuorum: 3, ServerStabilizationTime: "10s"},
				ClusterTLSCertFile: "/etc/keyraft/tls/cluster.crt",
				ClusterTLSKeyFile:  "/etc/keyraft/tls/cluster.key",
				ClusterTLSCAFile:   "/etc/keyraft/tls/cluster-ca.crt",
			},
			Listeners: []Listener{{Type: "tcp", Address: "0.0.0.0:8200", ClusterAddress: "0.0.0.0:8201",
				TLSCertFile: "/etc/keyraft/tls/node.crt", TLSKeyFile: "/etc/keyraft/tls/node.key", MaxRequestSize: DefaultMaxRequestSize}},
			Seal:        Seal{Type: "shamir"},
			APIAddr:     "https://10.0.0.2:8200",
			ClusterAddr: "https://10.0.0.2:8201",
			LogLevel:    "info",
		}},
		{"autopilot-partial.hcl", Config{
			Storage: Storage{Type: "raft", Path: "/data", NodeID: "n",
				Autopilot: &Autopilot{CleanupDeadServers: new(true)}},
			Listeners: []Listener{{Type: "tcp", Address: "127.0.0.1:8200", ClusterAddress: "127.0.0.1:8201",
				TLSDisable: true, MaxRequestSize: DefaultMaxRequestSize}},
			Seal:        Seal{Type: "shamir"},
			APIAddr:     "http://127.0.0.1:8200",
			ClusterAddr: "https://127.0.0.1:8201",
			LogLevel:    "info",
		}},
		{"autopilot-empty.hcl", Config{
			Storage: Storage{Type: "raft", Path: "/data", NodeID: "n",
				GossipAddress: "127.0.0.1:0", LeaderContactLease: "1500ms", Autopilot: &Autopilot{}},
			Listeners: []Listener{{Type: "tcp", Address: "127.0.0.1:8200", ClusterAddress: "127.0.0.1:8201",
				TLSDisable: true, MaxRequestSize: DefaultMaxRequestSize}},
			Seal:        Seal{Type: "shamir"},
			APIAddr:     "http://127.0.0.1:8200",
			ClusterAddr: "https://127.0.0.1:8201",
			LogLevel:    "info",
		}},
		{"listener-limits.hcl", Config{
			Storage: Storage{Type: "raft", Path: "/data", NodeID: "n"},
			Listeners: []Listener{
				{Type: "tcp", Address: "127.0.0.1:8200", ClusterAddress: "127.0.0.1:8201", TLSDisable: true, MaxRequestSize: DefaultMaxRequestSize,
					HTTPReadHeaderTimeout: 5 * time.Second, HTTPReadTimeout: 45 * time.Second, HTTPWriteTimeout: 90 * time.Second, HTTPIdleTimeout: 10 * time.Minute,
					MaxBatchItems: 100, MaxTokenBatchItemsInFlight: 250},
				{Type: "tcp", Address: "127.0.0.1:9300", ClusterAddress: "127.0.0.1:9301", TLSDisable: true, MaxRequestSize: DefaultMaxRequestSize,
					HTTPReadHeaderTimeout: 10 * time.Second, HTTPReadTimeout: 30 * time.Second, HTTPWriteTimeout: 0, HTTPIdleTimeout: 5 * time.Minute,
					MaxBatchItems: 20000, MaxTokenBatchItemsInFlight: 20000},
			},
			Seal:        Seal{Type: "shamir"},
			APIAddr:     "http://127.0.0.1:8200",
			ClusterAddr: "https://127.0.0.1:8201",
			LogLevel:    "info",
		}},
		{"pkcs11-slot.hcl", sealed(Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{
			Lib: "/usr/lib/softhsm/libsofthsm2.so", Slot: new(uint(1838735785)), PIN: "1234-secret",
			KeyLabel: "keyraft-root", Mechanism: "CKM_AES_GCM", GenerateKey: true}}, nil)},
		{"pkcs11-token-label.hcl", sealed(Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{
			Lib: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "keyraft",
			KeyLabel: "keyraft-root-rsa", Mechanism: "CKM_RSA_PKCS_OAEP"}}, nil)},
		{"pkcs11-numeric-mechanism.hcl", sealed(Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{
			Lib: "/opt/hsm/lib/libcknfast.so", Slot: new(uint(0)),
			KeyLabel: "keyraft-root", Mechanism: "CKM_AES_GCM"}}, nil)},
		{"pkcs11-pin-file.hcl", sealed(Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{
			Lib: "/usr/lib/softhsm/libsofthsm2.so", Slot: new(uint(1)), PINFile: "/etc/keyraft/hsm.pin",
			KeyLabel: "keyraft-root", Mechanism: "CKM_RSA_PKCS_OAEP"}}, nil)},
		{"migrate-shamir-to-pkcs11.hcl", sealed(Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{
			Lib: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "keyraft",
			KeyLabel: "keyraft-root", Mechanism: "CKM_AES_GCM"}}, &Seal{Type: "shamir"})},
		{"migrate-pkcs11-to-shamir.hcl", sealed(Seal{Type: "shamir"}, &Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{
			Lib: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "keyraft",
			KeyLabel: "keyraft-root", Mechanism: "CKM_AES_GCM"}})},
		{"migrate-pkcs11-alone.hcl", sealed(Seal{Type: "shamir"}, &Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{
			Lib: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "keyraft",
			KeyLabel: "keyraft-root", Mechanism: "CKM_AES_GCM"}})},
		{"migrate-pkcs11-to-pkcs11.hcl", sealed(
			Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{
				Lib: "/usr/lib/softhsm/libsofthsm2.so", Slot: new(uint(0)), PINFile: "/run/secrets/hsm-pin",
				KeyLabel: "keyraft-root-2", Mechanism: "CKM_AES_GCM", GenerateKey: true}},
			&Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{
				Lib: "/usr/lib/old-hsm/libpkcs11.so", Slot: new(uint(3)), PIN: "old-pin",
				KeyLabel: "keyraft-root", Mechanism: "CKM_AES_GCM"}})},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			withListenerDefaults(tt.want.Listeners)
			got, err := parseFile(t, filepath.Join("testdata", "good", tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
			// Validate on a valid config changes nothing.
			again := clone(got)
			if err := again.Validate(); err != nil || !reflect.DeepEqual(again, *got) {
				t.Errorf("second Validate: err %v, changed %v", err, !reflect.DeepEqual(again, *got))
			}
		})
	}
	if n := len(glob(t, "good")); n != len(tests) {
		t.Errorf("testdata/good has %d files, the table %d", n, len(tests))
	}
}

// TestBadConfigs checks the exact one-line error of every file in
// testdata/bad. The first line of each file says what is expected:
//
//	# invalid: <message>       the error wraps ErrInvalid
//	# unsupported: <message>   the error wraps ErrUnsupported
func TestBadConfigs(t *testing.T) {
	for _, path := range glob(t, "bad") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(src), "\n")
			kind, want, ok := strings.Cut(strings.TrimPrefix(first, "# "), ": ")
			sentinel := map[string]error{"invalid": ErrInvalid, "unsupported": ErrUnsupported}[kind]
			if !ok || sentinel == nil {
				t.Fatalf("first line %q is not '# invalid: …' or '# unsupported: …'", first)
			}
			_, err = Parse(src, "keyraft.hcl")
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", want)
			}
			if err.Error() != want {
				t.Errorf("error\n got: %s\nwant: %s", err, want)
			}
			if !errors.Is(err, sentinel) {
				t.Errorf("error does not wrap the %s sentinel", kind)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error has more than one line")
			}
		})
	}
}

// withListenerDefaults sets the timeouts and batch limits that the
// table's listeners leave zero (the files do not set them) to their
// defaults: what Validate must have filled in.
func withListenerDefaults(ls []Listener) {
	for i := range ls {
		l := &ls[i]
		for _, d := range []struct {
			v   *time.Duration
			def time.Duration
		}{{&l.HTTPReadHeaderTimeout, 10 * time.Second}, {&l.HTTPReadTimeout, 30 * time.Second}, {&l.HTTPIdleTimeout, 5 * time.Minute}} {
			if *d.v == 0 {
				*d.v = d.def
			}
		}
		if l.MaxBatchItems == 0 {
			l.MaxBatchItems = 10000
		}
		if l.MaxTokenBatchItemsInFlight == 0 {
			l.MaxTokenBatchItemsInFlight = 20000
		}
	}
}

// sealed returns the configuration of the testdata files that differ only
// in their seal blocks.
func sealed(seal Seal, old *Seal) Config {
	return Config{
		Storage: Storage{Type: "raft", Path: "/data", NodeID: "n"},
		Listeners: []Listener{{Type: "tcp", Address: "127.0.0.1:8200", ClusterAddress: "127.0.0.1:8201",
			TLSDisable: true, MaxRequestSize: DefaultMaxRequestSize}},
		Seal:        seal,
		OldSeal:     old,
		APIAddr:     "http://127.0.0.1:8200",
		ClusterAddr: "https://127.0.0.1:8201",
		LogLevel:    "info",
	}
}

// clone copies c deeply enough that Validate on the copy cannot change c.
func clone(c *Config) Config {
	cp := *c
	cp.Listeners = append([]Listener(nil), c.Listeners...)
	cp.Seal = cloneSeal(c.Seal)
	if c.OldSeal != nil {
		old := cloneSeal(*c.OldSeal)
		cp.OldSeal = &old
	}
	return cp
}

func cloneSeal(s Seal) Seal {
	if s.PKCS11 != nil {
		k := *s.PKCS11
		s.PKCS11 = &k
	}
	return s
}

func glob(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.hcl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no files in testdata/%s: %v", dir, err)
	}
	return files
}

func TestLoad(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "good", "minimal.hcl"))
	if err != nil || c.Storage.NodeID != "node-1" {
		t.Fatalf("Load: %v, %+v", err, c)
	}
	_, err = Load(filepath.Join("testdata", "bad", "typo-argument.hcl"))
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join("testdata", "bad", "typo-argument.hcl")+":7,3-9: ") {
		t.Errorf("Load error does not start with the path and position: %v", err)
	}
	_, err = Load(filepath.Join(t.TempDir(), "missing.hcl"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want os.ErrNotExist", err)
	}
	_, err = Parse([]byte(`{"storage": {}}`), "keyraft.json")
	if !errors.Is(err, ErrUnsupported) || err.Error() != "keyraft.json: JSON configuration files are not supported; write the file in HCL" {
		t.Errorf("JSON file: %v", err)
	}
}

func TestDev(t *testing.T) {
	c := Dev("")
	if err := c.Validate(); err == nil || err.Error() != `storage "raft": path is required` {
		t.Errorf("Dev without a path: %v", err)
	}
	c.Storage.Path = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatalf("Dev: %v", err)
	}
	if c.APIAddr != "http://127.0.0.1:8200" || c.ClusterAddr != "https://127.0.0.1:8201" ||
		c.Storage.NodeID != "dev-node" || c.Seal.Type != "shamir" || !c.Listeners[0].TLSDisable {
		t.Errorf("Dev defaults: %+v", c)
	}

	// The listener's timeouts and batch limits get Vault's and the API
	// server's defaults.
	l := c.Listeners[0]
	if l.HTTPReadHeaderTimeout != 10*time.Second || l.HTTPReadTimeout != 30*time.Second || l.HTTPWriteTimeout != 0 ||
		l.HTTPIdleTimeout != 5*time.Minute || l.MaxBatchItems != 10000 || l.MaxTokenBatchItemsInFlight != 20000 {
		t.Errorf("Dev listener limits: %+v", l)
	}

	// Port 0 lets the server pick free ports; the derived ones stay 0.
	c = Dev("127.0.0.1:0")
	c.Storage.Path = "x"
	if err := c.Validate(); err != nil {
		t.Fatalf("Dev(127.0.0.1:0): %v", err)
	}
	if c.Listeners[0].ClusterAddress != "127.0.0.1:0" || c.APIAddr != "http://127.0.0.1:0" {
		t.Errorf("port 0: %+v", c)
	}
}

func TestValidateProgrammatic(t *testing.T) {
	valid := func() *Config {
		c := Dev("127.0.0.1:8200")
		c.Storage.Path = "/data"
		return c
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
		kind   error
	}{
		{"no storage", func(c *Config) { c.Storage = Storage{} }, `a storage "raft" block is required`, ErrInvalid},
		{"no listeners", func(c *Config) { c.Listeners = nil }, `at least one listener "tcp" block is required`, ErrInvalid},
		{"listener without type", func(c *Config) { c.Listeners[0].Type = "" }, `listener has no type; write listener "tcp" { … }`, ErrInvalid},
		{"pkcs11 without settings", func(c *Config) { c.Seal.Type = "pkcs11" }, `seal "pkcs11": lib is required: the path of the PKCS#11 module, such as /usr/lib/softhsm/libsofthsm2.so`, ErrInvalid},
		{"awskms", func(c *Config) { c.Seal.Type = "awskms" }, `seal type "awskms" is not supported; use "shamir" or "pkcs11"`, ErrUnsupported},
		{"shamir with pkcs11 settings", func(c *Config) { c.Seal.PKCS11 = &PKCS11Seal{Lib: "x.so"} }, `seal "shamir" has pkcs11 settings; its type must be "pkcs11"`, ErrInvalid},
		{"pkcs11 bad mechanism", func(c *Config) {
			c.Seal = Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{Lib: "x.so", TokenLabel: "t", KeyLabel: "k", Mechanism: "CKM_AES_KEY_WRAP"}}
		}, `seal "pkcs11": mechanism "CKM_AES_KEY_WRAP" is not supported; use CKM_AES_GCM (0x1087) or CKM_RSA_PKCS_OAEP (0x0009)`, ErrUnsupported},
		{"old seal shamir to shamir", func(c *Config) { c.OldSeal = &Seal{} }, `disabled seal "shamir": migrating from shamir to shamir changes nothing; remove the disabled seal block`, ErrInvalid},
		{"old seal pkcs11 without token", func(c *Config) {
			c.OldSeal = &Seal{Type: "pkcs11", PKCS11: &PKCS11Seal{Lib: "x.so", KeyLabel: "k"}}
		}, `disabled seal "pkcs11": slot or token_label is required to choose the token`, ErrInvalid},
		{"bad address", func(c *Config) { c.Listeners[0].Address = "localhost" }, `listener "tcp": address "localhost" is not host:port`, ErrInvalid},
		{"negative size", func(c *Config) { c.Listeners[0].MaxRequestSize = -5 }, `listener "tcp" on 127.0.0.1:8200: max_request_size must not be negative`, ErrInvalid},
		{"negative read timeout", func(c *Config) { c.Listeners[0].HTTPReadTimeout = -time.Second }, `listener "tcp" on 127.0.0.1:8200: http_read_timeout must not be negative`, ErrInvalid},
		{"negative read header timeout", func(c *Config) { c.Listeners[0].HTTPReadHeaderTimeout = -1 }, `listener "tcp" on 127.0.0.1:8200: http_read_header_timeout must not be negative`, ErrInvalid},
		{"negative write timeout", func(c *Config) { c.Listeners[0].HTTPWriteTimeout = -time.Minute }, `listener "tcp" on 127.0.0.1:8200: http_write_timeout must not be negative`, ErrInvalid},
		{"negative idle timeout", func(c *Config) { c.Listeners[0].HTTPIdleTimeout = -time.Hour }, `listener "tcp" on 127.0.0.1:8200: http_idle_timeout must not be negative`, ErrInvalid},
		{"negative max_batch_items", func(c *Config) { c.Listeners[0].MaxBatchItems = -1 }, `listener "tcp" on 127.0.0.1:8200: max_batch_items must not be negative`, ErrInvalid},
		{"negative in-flight items", func(c *Config) { c.Listeners[0].MaxTokenBatchItemsInFlight = -1 }, `listener "tcp" on 127.0.0.1:8200: max_token_batch_items_in_flight must not be negative`, ErrInvalid},
		{"in-flight below batch", func(c *Config) { c.Listeners[0].MaxBatchItems, c.Listeners[0].MaxTokenBatchItemsInFlight = 10, 9 },
			`listener "tcp" on 127.0.0.1:8200: max_token_batch_items_in_flight (9) must be at least max_batch_items (10), or a full batch could never run`, ErrInvalid},
		{"same ports", func(c *Config) { c.Listeners[0].ClusterAddress = "127.0.0.1:8200" }, `listener "tcp" on 127.0.0.1:8200: cluster_address must differ from address`, ErrInvalid},
		{"half TLS", func(c *Config) { c.Listeners[0].TLSCertFile = "a.crt" }, `listener "tcp" on 127.0.0.1:8200: tls_cert_file and tls_key_file go together`, ErrInvalid},
		{"retry_join empty", func(c *Config) { c.Storage.RetryJoin = []RetryJoin{{}} }, `storage "raft": retry_join: leader_api_addr is required`, ErrInvalid},
		{"cluster_addr without port", func(c *Config) { c.ClusterAddr = "https://10.0.0.1" }, `cluster_addr "https://10.0.0.1" has no port`, ErrInvalid},
		{"api_addr with path", func(c *Config) { c.APIAddr = "https://10.0.0.1:8200/v1" }, `api_addr "https://10.0.0.1:8200/v1" is not a URL like https://10.0.0.5:8200`, ErrInvalid},
		{"api_addr all interfaces", func(c *Config) { c.APIAddr = "http://0.0.0.0:8200" }, `api_addr "http://0.0.0.0:8200" names no specific host`, ErrInvalid},
		{"gossip_address without port", func(c *Config) { c.Storage.GossipAddress = "gossip.internal" }, `storage "raft": gossip_address "gossip.internal" is not host:port`, ErrInvalid},
		{"gossip_address on the API port", func(c *Config) { c.Storage.GossipAddress = "127.0.0.1:8200" }, `storage "raft": gossip_address 127.0.0.1:8200 is also a listener's address`, ErrInvalid},
		{"gossip_advertise_address port 0", func(c *Config) { c.Storage.GossipAdvertiseAddress = "10.0.0.1:0" }, `storage "raft": gossip_advertise_address "10.0.0.1:0" names no specific port`, ErrInvalid},
		{"negative leader_contact_lease", func(c *Config) { c.Storage.LeaderContactLease = "-2s" }, `storage "raft": leader_contact_lease "-2s" must be a positive duration, such as "2s"`, ErrInvalid},
		{"autopilot min_quorum negative", func(c *Config) { c.Storage.Autopilot = &Autopilot{MinQuorum: -1} }, `storage "raft": autopilot: min_quorum must be between 1 and 65536, not -1`, ErrInvalid},
		{"autopilot threshold zero", func(c *Config) { c.Storage.Autopilot = &Autopilot{DeadServerLastContactThreshold: "0s"} }, `storage "raft": autopilot: dead_server_last_contact_threshold "0s" must be a duration of at least 1s, such as "24h"`, ErrInvalid},
		{"cluster TLS without cert", func(c *Config) {
			c.Storage.ClusterTLSKeyFile, c.Storage.ClusterTLSCAFile = "c.key", "ca.crt"
		}, `storage "raft": cluster_tls_cert_file, cluster_tls_key_file and cluster_tls_ca_file go together; cluster_tls_cert_file is missing`, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(c)
			err := c.Validate()
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error does not wrap %v", tt.kind)
			}
		})
	}
}

// TestLimits checks that input deep or large enough to hurt the HCL parser
// (deep nesting exhausts its stack) is refused before it gets there.
func TestLimits(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{"a = " + strings.Repeat("[", 1_000_000), "keyraft.hcl:1,105: nested more than 100 levels deep"},
		{"a = " + strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200), "keyraft.hcl:1,105: nested more than 100 levels deep"},
		{"# " + strings.Repeat("x", 1<<20), "keyraft.hcl: the file is larger than 1 MiB"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src), "keyraft.hcl")
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalid) {
			t.Errorf("got %v, want %s", err, tt.want)
		}
	}
	// Closers inside strings cannot hide openers.
	src := `cluster_name = "` + strings.Repeat(")", 500) + `"` + "\na = " + strings.Repeat("[", 101)
	if _, err := Parse([]byte(src), "keyraft.hcl"); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("closers in a string: %v", err)
	}
}
