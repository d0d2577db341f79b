package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster/gossip"
	"github.com/keyraft/keyraft/fsm"
)

// ErrLeaderLost is returned by CheckLease on a node that has not heard
// from a leader within its contact lease.
var ErrLeaderLost = errors.New("cluster: this node has lost contact with the leader")

// CheckLease reports whether this node may serve key use from its local
// state. The rule: a leader serves while Raft keeps it leader (Raft steps
// a leader down when a quorum has not answered within LeaderLeaseTimeout);
// a follower serves while its last contact with the leader is younger
// than LeaderContactLease. A node cut off from the majority therefore
// stops using keys within the lease, so a key disabled or rotated on the
// majority side is not used by the minority for longer than that — and
// in practice never, because every key use also waits for its audit event
// to commit on a quorum. It returns ErrLeaderLost otherwise.
func (n *Node) CheckLease() error {
	switch n.raft.State() {
	case raft.Leader:
		return nil
	case raft.Shutdown:
		return ErrClosed
	}
	last := n.raft.LastContact()
	if last.IsZero() {
		return fmt.Errorf("%w: no leader has contacted it since it started", ErrLeaderLost)
	}
	if down := n.steppedDown.Load(); down != 0 && !last.After(time.Unix(0, down).Add(10*time.Millisecond)) {
		return fmt.Errorf("%w: it stepped down as leader and no leader has contacted it since", ErrLeaderLost)
	}
	if age := time.Since(last); age > n.cfg.LeaderContactLease {
		return fmt.Errorf("%w for %s (lease %s)", ErrLeaderLost, age.Round(time.Millisecond), n.cfg.LeaderContactLease)
	}
	return nil
}

// afterRestore runs when Raft replaced the state from a snapshot (a
// restore on the leader, or a snapshot installed on a follower). When the
// restored root of trust is not the one this node unsealed with, the keys
// in memory belong to another state: seal.
func (n *Node) afterRestore() {
	n.mu.Lock()
	had := n.unsealedRoot
	n.mu.Unlock()
	if had == nil {
		return
	}
	now, _, err := n.fsm.Get(fsm.RecordRootKey)
	if err == nil && slices.Equal(now, had) {
		return
	}
	n.log.Warn("a restored snapshot replaced the root of trust; sealing")
	go n.sealInternal()
}

// gossipAddr is where this node gossips (or will, once it has a key).
func (n *Node) gossipAddr() string {
	n.gossipMu.Lock()
	g := n.gossip
	n.gossipMu.Unlock()
	if g != nil {
		return g.Addr()
	}
	if n.cfg.GossipAdvertiseAddr != "" {
		return n.cfg.GossipAdvertiseAddr
	}
	addr, _ := n.gossipBind()
	return addr
}

// gossipBind is the configured gossip address, or the cluster port's host
// and the next port up.
func (n *Node) gossipBind() (string, error) {
	if n.cfg.GossipAddr != "" {
		return n.cfg.GossipAddr, nil
	}
	if _, p, err := net.SplitHostPort(n.cfg.BindAddr); err == nil && p == "0" {
		// A cluster port picked by the OS (tests): let it pick this one too.
		host, _, _ := net.SplitHostPort(n.ClusterAddr())
		return net.JoinHostPort(host, "0"), nil
	}
	host, port, err := net.SplitHostPort(n.ClusterAddr())
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1)), nil
}

func (n *Node) localMeta() gossip.Meta {
	return gossip.Meta{NodeID: n.cfg.NodeID, APIAddr: n.cfg.APIAddr, ClusterAddr: n.ClusterAddr(),
		Sealed: n.barrier.Sealed(), Version: n.cfg.Version}
}

// startGossip joins the gossip pool with the identity's key (once).
func (n *Node) startGossip(id *localIdentity) error {
	n.gossipMu.Lock()
	defer n.gossipMu.Unlock()
	if n.gossip != nil {
		return nil
	}
	select {
	case <-n.closed:
		return ErrClosed
	default:
	}
	bind, err := n.gossipBind()
	if err != nil {
		return err
	}
	gc := gossip.DefaultConfig()
	gc.NodeID = n.cfg.NodeID
	gc.BindAddr = bind
	gc.AdvertiseAddr = n.cfg.GossipAdvertiseAddr
	gc.Key = id.GossipKey
	gc.Logger = n.log.Named("gossip")
	gc.OnChange = n.rememberGossipPeers
	g, err := gossip.Start(gc, n.localMeta())
	if err != nil {
		return fmt.Errorf("cluster: starting gossip on %s: %w", bind, err)
	}
	n.gossip = g
	if peers := slices.DeleteFunc(slices.Clone(id.GossipPeers), func(a string) bool { return a == g.Addr() }); len(peers) > 0 {
		go func() {
			// Retry until some member answers: after a full-cluster
			// restart the others may come up later than this node.
			for i := 0; ; i++ {
				if c, err := g.Join(peers); err == nil && c > 0 {
					return
				}
				select {
				case <-n.closed:
					return
				case <-time.After(min(time.Duration(i+1)*200*time.Millisecond, 5*time.Second)):
				}
			}
		}()
	}
	n.log.Info("gossip started", "addr", g.Addr())
	return nil
}

func (n *Node) stopGossip() {
	n.gossipMu.Lock()
	g := n.gossip
	n.gossip = nil
	n.gossipMu.Unlock()
	if g != nil {
		g.Leave(500 * time.Millisecond)
		g.Shutdown()
	}
}

func (n *Node) gossipNode() *gossip.Gossip {
	n.gossipMu.Lock()
	defer n.gossipMu.Unlock()
	return n.gossip
}

// updateGossipMeta tells peers this node's seal state (soon: one
// publisher sends the latest state, so updates never overtake each other).
func (n *Node) updateGossipMeta() {
	select {
	case n.metaUpdate <- struct{}{}:
	default:
	}
}

func (n *Node) publishMeta() {
	for {
		select {
		case <-n.closed:
			return
		case <-n.metaUpdate:
		}
		if g := n.gossipNode(); g != nil {
			if err := g.SetMeta(n.localMeta()); err != nil {
				n.log.Debug("gossip meta update failed", "error", err)
			}
		}
	}
}

// watchLeadership notes when this node stops being leader: Raft counts
// its step-down as contact with a leader, which must not extend its lease.
func (n *Node) watchLeadership() {
	ch := make(chan raft.Observation, 8)
	n.raft.RegisterObserver(raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.RaftState)
		return ok
	}))
	go func() {
		wasLeader := false
		for {
			select {
			case <-n.closed:
				return
			case o := <-ch:
				st := o.Data.(raft.RaftState)
				if wasLeader && st != raft.Leader {
					n.steppedDown.Store(time.Now().UnixNano())
				}
				wasLeader = st == raft.Leader
			}
		}
	}()
}

// checkPeer admits a cluster-port connection from the node named in its
// certificate only while that node is in the Raft configuration (or this
// node has none yet: it is joining and the leader is calling). So a
// removed node's certificate opens nothing.
func (n *Node) checkPeer(nodeID string) error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	servers := f.Configuration().Servers
	if len(servers) == 0 {
		return nil
	}
	for _, s := range servers {
		if string(s.ID) == nodeID {
			return nil
		}
	}
	return fmt.Errorf("cluster: %q is not a member of this cluster", nodeID)
}

// gossipPeers lists the gossip addresses of live members (this node too).
func (n *Node) gossipPeers() []string {
	g := n.gossipNode()
	if g == nil {
		return nil
	}
	var out []string
	for _, m := range g.Members() {
		if m.State == gossip.Alive {
			out = append(out, m.GossipAddr)
		}
	}
	return out
}

// rememberGossipPeers keeps the members' gossip addresses in the identity
// file, so the node finds the pool again after a restart.
func (n *Node) rememberGossipPeers() {
	n.identMu.Lock()
	defer n.identMu.Unlock()
	id := n.ident.Load()
	peers := n.gossipPeers()
	if id == nil || len(peers) == 0 {
		return
	}
	merged := slices.Clone(id.GossipPeers)
	for _, p := range peers {
		if !slices.Contains(merged, p) {
			merged = append(merged, p)
		}
	}
	if len(merged) == len(id.GossipPeers) {
		return
	}
	if len(merged) > 32 {
		merged = merged[len(merged)-32:]
	}
	next := *id
	next.GossipPeers = merged
	if err := saveIdentity(n.cfg.DataDir, &next); err != nil {
		n.log.Warn("could not save gossip peers", "error", err)
		return
	}
	n.ident.Store(&next)
}

func (n *Node) forgetMember(id string) {
	if g := n.gossipNode(); g != nil {
		g.Forget(id)
	}
}

// Member is one node as gossip and Raft see it.
type Member struct {
	NodeID      string
	APIAddr     string
	ClusterAddr string
	GossipAddr  string
	// Status is alive, suspect, failed or left (gossip's view).
	Status  string
	Since   time.Time
	Sealed  bool
	Version string
	// InRaft, Voter and Leader come from the Raft configuration.
	InRaft, Voter, Leader bool
}

// Members lists the nodes gossip knows and the Raft servers it does not
// (as "unknown"), sorted by node ID.
func (n *Node) Members() []Member {
	peers, _ := n.Peers()
	byID := map[string]Peer{}
	for _, p := range peers {
		byID[p.ID] = p
	}
	var out []Member
	seen := map[string]bool{}
	if g := n.gossipNode(); g != nil {
		for _, m := range g.Members() {
			p, in := byID[m.Meta.NodeID]
			out = append(out, Member{NodeID: m.Meta.NodeID, APIAddr: m.Meta.APIAddr, ClusterAddr: m.Meta.ClusterAddr,
				GossipAddr: m.GossipAddr, Status: m.State.String(), Since: m.Since, Sealed: m.Meta.Sealed,
				Version: m.Meta.Version, InRaft: in, Voter: p.Voter, Leader: p.Leader})
			seen[m.Meta.NodeID] = true
		}
	}
	for _, p := range peers {
		if !seen[p.ID] {
			out = append(out, Member{NodeID: p.ID, ClusterAddr: p.Address, Status: "unknown", InRaft: true, Voter: p.Voter, Leader: p.Leader})
		}
	}
	slices.SortFunc(out, func(a, b Member) int {
		switch {
		case a.NodeID < b.NodeID:
			return -1
		case a.NodeID > b.NodeID:
			return 1
		}
		return 0
	})
	return out
}

// LeaderAPIAddr returns the API address of the current leader as gossip
// reports it ("" when unknown).
func (n *Node) LeaderAPIAddr() string {
	_, id := n.Leader()
	if id == "" {
		return ""
	}
	if id == n.cfg.NodeID {
		return n.cfg.APIAddr
	}
	if g := n.gossipNode(); g != nil {
		if m, ok := g.Member(id); ok {
			return m.Meta.APIAddr
		}
	}
	return ""
}

// AutopilotConfig is the leader's membership housekeeping, like Vault's
// autopilot: non-voters that stay healthy for ServerStabilizationTime
// become voters; voters that gossip has seen failed (or that left) for
// longer than DeadServerLastContactThreshold are removed, as long as at
// least MinQuorum voters remain.
type AutopilotConfig struct {
	CleanupDeadServers             bool
	DeadServerLastContactThreshold time.Duration
	MinQuorum                      int
	ServerStabilizationTime        time.Duration
}

// DefaultAutopilotConfig: promote after 10 s of health; remove voters
// dead for 24 h (Vault's default), never below three voters.
func DefaultAutopilotConfig() AutopilotConfig {
	return AutopilotConfig{CleanupDeadServers: true, DeadServerLastContactThreshold: 24 * time.Hour,
		MinQuorum: 3, ServerStabilizationTime: 10 * time.Second}
}

// Validate reports the first setting that cannot work.
func (c AutopilotConfig) Validate() error {
	switch {
	case c.MinQuorum < 1:
		return errors.New("cluster: autopilot min_quorum must be at least 1")
	case c.ServerStabilizationTime < 0 || c.DeadServerLastContactThreshold < 0:
		return errors.New("cluster: autopilot durations must not be negative")
	case c.CleanupDeadServers && c.DeadServerLastContactThreshold < time.Second:
		return errors.New("cluster: autopilot dead_server_last_contact_threshold must be at least 1s")
	}
	return nil
}

// autopilotState is the leader's memory of when each server became
// healthy or unhealthy.
type autopilotState struct {
	healthySince   map[string]time.Time
	unhealthySince map[string]time.Time
}

func (n *Node) autopilotLoop() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.closed:
			return
		case <-t.C:
		}
		if n.IsLeader() && !n.barrier.Sealed() {
			n.autopilotStep(time.Now(), n.cfg.Autopilot)
		} else {
			n.pilotMu.Lock()
			n.pilot = autopilotState{}
			n.pilotMu.Unlock()
		}
	}
}

// autopilotStep runs one round of promotion and dead-server cleanup.
func (n *Node) autopilotStep(now time.Time, cfg AutopilotConfig) {
	n.pilotMu.Lock()
	defer n.pilotMu.Unlock()
	g := n.gossipNode()
	if g == nil {
		return
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	if n.pilot.healthySince == nil {
		n.pilot = autopilotState{healthySince: map[string]time.Time{}, unhealthySince: map[string]time.Time{}}
	}
	servers := f.Configuration().Servers
	voters := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	for _, s := range servers {
		id := string(s.ID)
		if id == n.cfg.NodeID {
			continue
		}
		m, known := g.Member(id)
		healthy := known && m.State == gossip.Alive && !m.Meta.Sealed
		if healthy {
			delete(n.pilot.unhealthySince, id)
			if _, ok := n.pilot.healthySince[id]; !ok {
				n.pilot.healthySince[id] = now
			}
		} else {
			delete(n.pilot.healthySince, id)
			if _, ok := n.pilot.unhealthySince[id]; !ok {
				n.pilot.unhealthySince[id] = now
			}
		}
		switch {
		case s.Suffrage == raft.Nonvoter && healthy && now.Sub(n.pilot.healthySince[id]) >= cfg.ServerStabilizationTime:
			if err := n.raft.AddVoter(s.ID, s.Address, 0, n.cfg.ApplyTimeout).Error(); err != nil {
				n.log.Warn("autopilot: promoting failed", "server_id", id, "error", err)
				continue
			}
			n.log.Info("autopilot: promoted to voter", "server_id", id)
			n.recordMembership("autopilot/promote", id)
			voters++
		case s.Suffrage == raft.Voter && cfg.CleanupDeadServers && !healthy && (!known || m.State == gossip.Dead || m.State == gossip.Left) &&
			now.Sub(n.pilot.unhealthySince[id]) >= cfg.DeadServerLastContactThreshold:
			if voters-1 < cfg.MinQuorum {
				continue
			}
			if err := n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout).Error(); err != nil {
				n.log.Warn("autopilot: removing a dead server failed", "server_id", id, "error", err)
				continue
			}
			voters--
			g.Forget(id)
			n.log.Warn("autopilot: removed a dead server", "server_id", id)
			n.recordMembership("autopilot/remove-dead-server", id)
		}
	}
}

// recordMembership writes an internal audit event for a membership change
// made by the node itself.
func (n *Node) recordMembership(op, serverID string) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	ev := &audit.Event{Time: time.Now().UTC(), Node: n.cfg.NodeID, Operation: op, Identity: "autopilot",
		Path: "sys/storage/raft/configuration", Details: map[string]string{"server_id": serverID}, Outcome: audit.Allowed, Status: 200}
	if err := n.audit.Record(ctx, ev); err != nil {
		n.log.Warn("membership change not recorded", "operation", op, "server_id", serverID, "error", err)
	}
}
