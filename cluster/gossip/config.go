package gossip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
)

// KeySize is the length of the gossip key: AES-256.
const KeySize = 32

// Config configures a Gossip instance. Start from DefaultConfig.
type Config struct {
	// NodeID is the memberlist node name; it must equal Meta.NodeID.
	NodeID string
	// BindAddr is the IP:port memberlist listens on, UDP and TCP. Port 0
	// picks a free port; Addr reports the one chosen.
	BindAddr string
	// AdvertiseAddr is the IP:port peers should use, if not BindAddr.
	AdvertiseAddr string
	// Key is the 32-byte AES-256-GCM gossip key shared by all members.
	Key []byte
	// ProbeInterval, ProbeTimeout, GossipInterval and SuspicionMult tune
	// failure detection; see DefaultConfig.
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	GossipInterval time.Duration
	SuspicionMult  int
	// Logger receives this package's and memberlist's logs; nil discards.
	Logger hclog.Logger
	// OnChange, if set, is called after a member joins, fails, leaves,
	// comes back or changes its Meta, starting with this node itself just
	// after Start. Calls are coalesced (one call may stand for several
	// changes), made one at a time from a single goroutine and never under
	// a lock. OnChange may call any method but Shutdown.
	OnChange func()
}

// DefaultConfig returns settings for a LAN (or loopback) cluster of a few
// nodes, tuned so that a killed node is reported Dead within about 2 s:
//
//   - ProbeInterval 250ms: each node probes its peers round robin, one per
//     interval, so every node probes a dead peer at most 2(N-1)-1
//     intervals apart: 750ms in a three-node cluster (memberlist's LAN
//     default interval is 1s).
//   - ProbeTimeout 100ms: the wait for a direct ack before indirect
//     probes. LAN round trips are well under 1ms, so this leaves room for
//     scheduling and GC pauses; the probe still gets the rest of the
//     interval for indirect and TCP acks.
//   - SuspicionMult 2: the suspicion timeout is SuspicionMult ×
//     max(1, log10 N) × ProbeInterval = 500ms for up to ten nodes. With 2,
//     memberlist expects no independent confirmations (it waits for
//     SuspicionMult-2 of them), so the timeout is this minimum rather than
//     SuspicionMaxTimeoutMult times it. 500ms is still five gossip rounds
//     for a wrongly suspected node to refute.
//   - GossipInterval 100ms: state changes (suspect, dead, meta) spread in a
//     few hundred milliseconds.
//
// Worst case on loopback: up to three probe intervals until the dead node
// is probed, one interval for the failed probe, 500ms suspicion and one
// gossip round: about 1.6s (the tests measure about 0.9s). On a WAN these values would cause false
// failures; memberlist's WAN defaults are an order of magnitude larger.
func DefaultConfig() Config {
	return Config{
		ProbeInterval:  250 * time.Millisecond,
		ProbeTimeout:   100 * time.Millisecond,
		GossipInterval: 100 * time.Millisecond,
		SuspicionMult:  2,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("gossip: node ID is required")
	case !printable(c.NodeID):
		return fmt.Errorf("gossip: node ID %q has spaces or control characters", c.NodeID)
	case len(c.Key) != KeySize:
		return fmt.Errorf("gossip: key must be %d bytes (AES-256), got %d", KeySize, len(c.Key))
	case c.ProbeInterval <= 0 || c.ProbeTimeout <= 0 || c.GossipInterval <= 0:
		return errors.New("gossip: probe interval, probe timeout and gossip interval must be positive")
	case c.ProbeTimeout >= c.ProbeInterval:
		return errors.New("gossip: probe timeout must be shorter than the probe interval")
	case c.SuspicionMult < 1:
		return errors.New("gossip: suspicion multiplier must be at least 1")
	}
	if _, _, err := splitIPPort(c.BindAddr, true); err != nil {
		return fmt.Errorf("gossip: bind address: %w", err)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := splitIPPort(c.AdvertiseAddr, false); err != nil {
			return fmt.Errorf("gossip: advertise address: %w", err)
		}
	}
	return nil
}

// splitIPPort parses "IP:port"; memberlist binds and advertises IP
// literals only.
func splitIPPort(addr string, portZeroOK bool) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q: host must be an IP address", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 || (port == 0 && !portZeroOK) {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	return host, port, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}
