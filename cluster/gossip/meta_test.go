package gossip

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	good := func() Config {
		c := DefaultConfig()
		c.NodeID = "node-1"
		c.BindAddr = "127.0.0.1:7946"
		c.Key = make([]byte, 32)
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"port 0", func(c *Config) { c.BindAddr = "127.0.0.1:0" }, true},
		{"ipv6", func(c *Config) { c.BindAddr = "[::1]:7946" }, true},
		{"advertise", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:7946" }, true},
		{"no node id", func(c *Config) { c.NodeID = "" }, false},
		{"space in node id", func(c *Config) { c.NodeID = "node 1" }, false},
		{"control char in node id", func(c *Config) { c.NodeID = "node\x001" }, false},
		{"no key", func(c *Config) { c.Key = nil }, false},
		{"16-byte key", func(c *Config) { c.Key = make([]byte, 16) }, false},
		{"33-byte key", func(c *Config) { c.Key = make([]byte, 33) }, false},
		{"no bind addr", func(c *Config) { c.BindAddr = "" }, false},
		{"bind without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, false},
		{"bind hostname", func(c *Config) { c.BindAddr = "localhost:7946" }, false},
		{"bind bad port", func(c *Config) { c.BindAddr = "127.0.0.1:http" }, false},
		{"bind port too big", func(c *Config) { c.BindAddr = "127.0.0.1:65536" }, false},
		{"advertise port 0", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }, false},
		{"advertise hostname", func(c *Config) { c.AdvertiseAddr = "node1:7946" }, false},
		{"zero probe interval", func(c *Config) { c.ProbeInterval = 0 }, false},
		{"negative probe timeout", func(c *Config) { c.ProbeTimeout = -time.Second }, false},
		{"zero gossip interval", func(c *Config) { c.GossipInterval = 0 }, false},
		{"timeout not below interval", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, false},
		{"zero suspicion mult", func(c *Config) { c.SuspicionMult = 0 }, false},
		{"zero config", func(c *Config) { *c = Config{} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mutate(&c)
			err := c.Validate()
			if tc.ok && err != nil {
				t.Errorf("rejected: %v", err)
			}
			if !tc.ok && err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestMetaEncodeDecode(t *testing.T) {
	m := Meta{NodeID: "n1", APIAddr: "https://10.0.0.1:8200", ClusterAddr: "10.0.0.1:8201", Sealed: true, Version: "1.2.3 <dev> & co"}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeMeta(b); err != nil || got != m {
		t.Fatalf("round trip: %+v, %v", got, err)
	}

	// The largest Meta that fits encodes to exactly MaxMetaSize bytes.
	m.Version = ""
	b, _ = m.Encode()
	m.Version = strings.Repeat("v", MaxMetaSize-len(b))
	if b, err = m.Encode(); err != nil || len(b) != MaxMetaSize {
		t.Fatalf("at the limit: %d bytes, %v", len(b), err)
	}
	m.Version += "v"
	if _, err := m.Encode(); err == nil {
		t.Fatal("Encode accepted a meta over the limit")
	}

	for _, bad := range []Meta{
		{},
		{NodeID: "n1", Version: "\xff"},
		{NodeID: "n1", APIAddr: "a\nb"},
	} {
		if _, err := bad.Encode(); err == nil {
			t.Errorf("Encode accepted %+v", bad)
		}
	}

	for _, in := range []string{
		``,
		`null`,
		`{}`,
		`[]`,
		`"n1"`,
		`{"node_id":""}`,
		`{"node_id":"n1","extra":1}`,
		`{"node_id":"n1"} {}`,
		`{"node_id":"n1"}x`,
		`{"node_id":1}`,
		`{"node_id":"n1","sealed":"yes"}`,
		`{"node_id":"n\u0000"}`,
		"{\"node_id\":\"n1\xff\"}",
		`{"node_id":"n1","version":"` + strings.Repeat("x", MaxMetaSize) + `"}`,
	} {
		if m, err := DecodeMeta([]byte(in)); err == nil {
			t.Errorf("DecodeMeta(%q) = %+v, want an error", in, m)
		}
	}
	if m, err := DecodeMeta([]byte(" {\"node_id\":\"n1\"}\n")); err != nil || m.NodeID != "n1" {
		t.Errorf("surrounding whitespace: %+v, %v", m, err)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{
		{NodeID: "n1"},
		{NodeID: "node-2", APIAddr: "https://10.0.0.2:8200", ClusterAddr: "10.0.0.2:8201", Sealed: true, Version: "0.1.0"},
		{NodeID: "ü", Version: "<&>\u2028"},
	} {
		b, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{``, `null`, `{"node_id":"n1","x":1}`, `{"NODE_ID":"n1"}`, `{"node_id":"a","node_id":"b"}`, "\xff", `{"node_id":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded %+v from %q but cannot encode it: %v", m, b, err)
		}
		if len(enc) > MaxMetaSize {
			t.Fatalf("encoding is %d bytes", len(enc))
		}
		again, err := DecodeMeta(enc)
		if err != nil || again != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, again, err)
		}
	})
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{Alive: "alive", Suspect: "suspect", Dead: "failed", Left: "left", State(9): "State(9)"} {
		if st.String() != want {
			t.Errorf("%d: %q, want %q", int(st), st.String(), want)
		}
	}
}
