package gossip

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// updateTimeout bounds how long SetMeta waits for its alive message to go
// out to at least one peer.
const updateTimeout = 5 * time.Second

var (
	// ErrClosed is returned by calls made after Shutdown.
	ErrClosed = errors.New("gossip: shut down")
	// ErrLeft is returned by Join and SetMeta after Leave.
	ErrLeft = errors.New("gossip: node has left the cluster")
)

// Gossip is a running member of the gossip cluster. Its methods are safe
// for concurrent use.
type Gossip struct {
	cfg  Config
	log  hclog.Logger
	ml   *memberlist.Memberlist
	addr string

	// opMu serializes SetMeta, Leave and Shutdown.
	opMu   sync.Mutex
	left   atomic.Bool
	closed atomic.Bool

	// mu guards the fields below. Memberlist calls the delegates with its
	// own node lock held, so code holding mu must never call into ml.
	mu      sync.Mutex
	meta    []byte
	members map[string]*entry

	changed chan struct{} // capacity 1: a pending OnChange
	stop    chan struct{}
	done    chan struct{}
}

// Start validates cfg, binds the gossip ports and starts memberlist with
// meta as this node's metadata (an empty meta.NodeID means cfg.NodeID).
// The node is alone until Join.
func Start(cfg Config, meta Meta) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if meta.NodeID == "" {
		meta.NodeID = cfg.NodeID
	}
	if meta.NodeID != cfg.NodeID {
		return nil, fmt.Errorf("gossip: meta node ID %q is not the configured %q", meta.NodeID, cfg.NodeID)
	}
	enc, err := meta.Encode()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	g := &Gossip{
		cfg:     cfg,
		log:     log,
		meta:    enc,
		members: make(map[string]*entry),
		changed: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	mc.BindAddr, mc.BindPort, _ = splitIPPort(cfg.BindAddr, true)
	mc.AdvertisePort = mc.BindPort // memberlist fills it in itself for port 0
	if cfg.AdvertiseAddr != "" {
		mc.AdvertiseAddr, mc.AdvertisePort, _ = splitIPPort(cfg.AdvertiseAddr, false)
	}
	mc.SecretKey = append([]byte(nil), cfg.Key...)
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.GossipInterval = cfg.GossipInterval
	mc.SuspicionMult = cfg.SuspicionMult
	mc.PushPullInterval = 10 * time.Second // full state sync; cheap for a few nodes
	mc.DeadNodeReclaimTime = time.Second   // a restarted node may come back on a new port
	mc.Delegate = (*delegate)(g)
	mc.Events = (*delegate)(g)
	mc.Alive = (*delegate)(g)
	mc.Logger = log.Named("memberlist").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})

	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start memberlist: %w", err)
	}
	g.ml = ml
	g.mu.Lock()
	if self := g.members[cfg.NodeID]; self != nil { // recorded by NotifyJoin during Create
		g.addr = self.GossipAddr
	}
	g.mu.Unlock()
	if cfg.OnChange != nil {
		go g.notifyLoop() // a change signalled during Create is still pending
	} else {
		close(g.done)
	}
	g.log.Info("gossip started", "node_id", cfg.NodeID, "addr", g.addr)
	return g, nil
}

// Join contacts the given gossip addresses (IP:port) and merges state with
// each that answers. It returns how many answered; the error is non-nil
// only when none did.
func (g *Gossip) Join(addrs []string) (int, error) {
	switch {
	case g.closed.Load():
		return 0, ErrClosed
	case g.left.Load():
		return 0, ErrLeft
	}
	n, err := g.ml.Join(addrs)
	if err != nil {
		return n, fmt.Errorf("gossip: join: %w", err)
	}
	return n, nil
}

// SetMeta replaces this node's metadata and gossips it. The new Meta is in
// effect locally even if the returned error is a timeout: it then reaches
// peers with later gossip or state syncs.
func (g *Gossip) SetMeta(m Meta) error {
	if m.NodeID == "" {
		m.NodeID = g.cfg.NodeID
	}
	if m.NodeID != g.cfg.NodeID {
		return fmt.Errorf("gossip: meta node ID %q is not the configured %q", m.NodeID, g.cfg.NodeID)
	}
	enc, err := m.Encode()
	if err != nil {
		return err
	}
	g.opMu.Lock()
	defer g.opMu.Unlock()
	switch {
	case g.closed.Load():
		return ErrClosed
	case g.left.Load():
		return ErrLeft
	}
	g.mu.Lock()
	g.meta = enc
	g.mu.Unlock()
	if err := g.ml.UpdateNode(updateTimeout); err != nil {
		return fmt.Errorf("gossip: set meta: %w", err)
	}
	return nil
}

// Members returns the membership table, this node included, sorted by
// NodeID. Dead and left members stay in it, with the time they were seen
// to fail or leave, until Forget or until they come back.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	out := make([]Member, 0, len(g.members))
	for _, e := range g.members {
		out = append(out, e.Member)
	}
	g.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Meta.NodeID < out[j].Meta.NodeID })
	return out
}

// Member returns one entry of the membership table.
func (g *Gossip) Member(nodeID string) (Member, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.members[nodeID]; ok {
		return e.Member, true
	}
	return Member{}, false
}

// Addr returns the gossip address (IP:port) peers should Join.
func (g *Gossip) Addr() string { return g.addr }

// Forget drops a dead or left member from the local table, for example
// after it was removed from the cluster. It reports whether it did; a
// live member is not forgotten (it would reappear with its next message).
// If a forgotten node comes back, it is added again.
func (g *Gossip) Forget(nodeID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.members[nodeID]
	if !ok || nodeID == g.cfg.NodeID || (m.State != Dead && m.State != Left) {
		return false
	}
	delete(g.members, nodeID)
	return true
}

// Leave announces that this node leaves the cluster and waits up to
// timeout (0: no limit) for the announcement to reach its peers. Peers
// then show it as Left rather than Dead. The node keeps answering gossip
// until Shutdown.
//
// Memberlist's own leave message looks like a failure to the peers' event
// delegates (v0.7.0 does not set Node.State), so Leave first tells every
// live peer directly, over the encrypted TCP channel, that this node is
// leaving; a peer that hears this marks the node Left once memberlist
// reports it gone, or at once if it already did. A peer that misses the
// message sees Dead.
func (g *Gossip) Leave(timeout time.Duration) error {
	g.opMu.Lock()
	defer g.opMu.Unlock()
	if g.closed.Load() {
		return ErrClosed
	}
	start := time.Now()
	if !g.left.Swap(true) {
		g.announceLeave(timeout)
	}
	if timeout > 0 {
		timeout = max(timeout-time.Since(start), time.Millisecond)
	}
	if err := g.ml.Leave(timeout); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	return nil
}

// msgLeaving, followed by a node ID, says that node is about to Leave.
const msgLeaving byte = 1

// announceLeave sends msgLeaving to every live peer in parallel and waits
// for the sends, at most timeout (0: no limit).
func (g *Gossip) announceLeave(timeout time.Duration) {
	var peers []*memberlist.Node
	g.mu.Lock()
	for id, e := range g.members {
		if id == g.cfg.NodeID {
			e.leaving = true
			continue
		}
		host, port, err := splitIPPort(e.GossipAddr, false)
		if e.State != Alive || err != nil {
			continue
		}
		peers = append(peers, &memberlist.Node{Name: id, Addr: net.ParseIP(host), Port: uint16(port)})
	}
	g.mu.Unlock()

	msg := append([]byte{msgLeaving}, g.cfg.NodeID...)
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.ml.SendReliable(p, msg); err != nil {
				g.log.Warn("cannot tell a peer that this node leaves", "node_id", p.Name, "error", err)
			}
		}()
	}
	sent := make(chan struct{})
	go func() { wg.Wait(); close(sent) }()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-sent:
	case <-expired:
	}
}

// Shutdown stops gossip without announcing anything: peers detect this
// node as Dead. Call Leave first for a graceful exit. OnChange is not
// called after Shutdown returns. Calling Shutdown again does nothing.
func (g *Gossip) Shutdown() error {
	g.opMu.Lock()
	if g.closed.Swap(true) {
		g.opMu.Unlock()
		return nil
	}
	err := g.ml.Shutdown()
	close(g.stop)
	g.opMu.Unlock()
	// Wait for a running OnChange without holding opMu: it may be inside
	// SetMeta or Leave, which now return ErrClosed.
	<-g.done
	if err != nil {
		return fmt.Errorf("gossip: shutdown: %w", err)
	}
	return nil
}

func (g *Gossip) notifyLoop() {
	defer close(g.done)
	for {
		select {
		case <-g.stop:
			return
		case <-g.changed:
			select {
			case <-g.stop:
				return
			default:
			}
			g.cfg.OnChange()
		}
	}
}

// signal records that OnChange is due; it never blocks.
func (g *Gossip) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}
