package gossip

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate holds memberlist's callbacks. Memberlist calls the event and
// alive callbacks with its node lock held: they take only g.mu and must
// not call back into memberlist.
type delegate Gossip

// NodeMeta returns the encoded local Meta; Encode keeps it within limit.
func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.meta) > limit {
		return nil // unreachable: limit is MetaMaxSize
	}
	return append([]byte(nil), d.meta...)
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// NotifyAlive admits a node only if its metadata decodes and names it.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	m, err := DecodeMeta(n.Meta)
	if err != nil {
		return err
	}
	if m.NodeID != n.Name {
		return fmt.Errorf("gossip: node %q advertises node_id %q", n.Name, m.NodeID)
	}
	return nil
}

// NotifyMsg handles msgLeaving from a peer about to Leave.
func (d *delegate) NotifyMsg(b []byte) {
	if len(b) < 2 || b[0] != msgLeaving {
		return
	}
	id := string(b[1:])
	d.mu.Lock()
	e := d.members[id]
	changed := e != nil && e.State == Dead // the leave overtook this message
	if e != nil {
		e.leaving = true
	}
	if changed {
		e.State = Left
	}
	d.mu.Unlock()
	if changed {
		d.log.Info("member left", "node_id", id)
		(*Gossip)(d).signal()
	}
}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.record(n, Alive) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.record(n, Alive) }

// NotifyLeave covers both failure and graceful leave. Memberlist v0.7.0
// leaves n.State unset, so a leave is told apart by the msgLeaving that
// came before it (n.State is still honoured should memberlist set it).
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	if n.State == memberlist.StateLeft {
		d.record(n, Left)
	} else {
		d.record(n, Dead)
	}
}

// entry is a member and whether it announced that it leaves.
type entry struct {
	Member
	leaving bool
}

func (d *delegate) record(n *memberlist.Node, st State) {
	meta, err := DecodeMeta(n.Meta)
	if err != nil { // NotifyAlive let only good metadata in
		meta = Meta{NodeID: n.Name}
	}
	addr := n.Address()
	now := time.Now()
	d.mu.Lock()
	e := d.members[n.Name]
	if e == nil {
		e = &entry{Member: Member{State: st, Since: now}}
		d.members[n.Name] = e
	}
	switch {
	case st == Alive && e.State != Alive: // back from Dead or Left
		e.leaving = false
	case st == Dead && e.leaving:
		st = Left
	}
	if e.State != st {
		e.State, e.Since = st, now
	}
	e.Meta, e.GossipAddr = meta, addr
	d.mu.Unlock()
	if st != Alive {
		d.log.Info("member "+st.String(), "node_id", n.Name, "addr", addr)
	} else {
		d.log.Debug("member alive", "node_id", n.Name, "addr", addr)
	}
	(*Gossip)(d).signal()
}
