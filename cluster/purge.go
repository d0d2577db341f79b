package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/plugins"
)

// Destroyed means gone (design promise 5). When a change removes key
// material from the state (a key's destruction), it also writes fsm.RecordPurge (store.PurgeWrite).
// Every node — sealed or not, since this needs no key — notices the new
// revision of that record once it has applied it and purges its disk:
//
//  1. a Raft snapshot with TrailingLogs 0, so Raft deletes every log entry
//     up to the snapshot (the entries that carried the key's records);
//  2. every other snapshot is overwritten with zeros and deleted, those
//     interrupted by a crash (.tmp) included;
//  3. raft.db and the state store are rewritten without freed pages: bbolt
//     keeps deleted entries and overwritten records in free pages until
//     it reuses them, so the old ciphertext would otherwise stay on disk.
//
// The index purged up to is kept in purged-index in the data directory;
// a node that stopped half-way purges again at start.

// A change asks for a purge with store.PurgeWrite, which writes
// fsm.RecordPurge: every node purges after each new revision of it. The
// state machine also moves it past a refused write that was prepared
// before a purge: that entry stays in the Raft log with the removed
// material it may carry, so the disks are purged again past it.

const purgedIndexFile = "purged-index"

// onPurgeStall, when set (by tests), hears of each node's stall during a
// purge: from the start of the bbolt rewrites to their end.
var onPurgeStall atomic.Pointer[func(n *Node, from, to time.Time)]

// PurgedIndex returns the index this node last purged its disk after (0:
// never).
func (n *Node) PurgedIndex() uint64 {
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, purgedIndexFile))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

func (n *Node) setPurgedIndex(idx uint64) error {
	path := filepath.Join(n.cfg.DataDir, purgedIndexFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(idx, 10)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// purgeStaggerMin is the least time between the purges of two nodes; a
// node waits twice its own last stall when that is longer, since its peers
// stall about as long.
const purgeStaggerMin = time.Second

// purgeTurn is this node's place in the order the nodes purge in: the
// followers first, one at a time in the order of their IDs, the leader
// last. Each node stalls while it purges (see purge); staggered, the
// others keep a quorum, and the leader, whose stall halts every commit,
// stalls alone. Every node derives its turn from the Raft configuration
// it holds, so no message is needed; a node that cannot tell goes first.
func (n *Node) purgeTurn() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	_, leader := n.raft.LeaderWithID()
	var followers []string
	for _, s := range f.Configuration().Servers {
		if s.ID != leader {
			followers = append(followers, string(s.ID))
		}
	}
	if leader != "" && string(leader) == n.cfg.NodeID {
		return len(followers)
	}
	slices.Sort(followers)
	return max(0, slices.Index(followers, n.cfg.NodeID))
}

// purgeLoop watches fsm.RecordPurge and purges the disk after each new revision,
// in its turn (purgeTurn).
func (n *Node) purgeLoop() {
	const every = 200 * time.Millisecond
	t := time.NewTicker(every)
	defer t.Stop()
	done := n.PurgedIndex()
	var retryAt time.Time
	var lastStall time.Duration
	failures := 0
	for {
		select {
		case <-n.closed:
			return
		case <-t.C:
		}
		rev, err := n.fsm.Revision(fsm.RecordPurge)
		if err != nil || rev <= done || time.Now().Before(retryAt) {
			continue
		}
		// Wait for this node's turn; the turn is read again after each
		// wait, since leadership (the leader goes last) may move meanwhile.
		step := max(purgeStaggerMin, 2*lastStall)
		for waited := 0; ; {
			turn := n.purgeTurn()
			if turn <= waited {
				break
			}
			select {
			case <-n.closed:
				return
			case <-time.After(time.Duration(turn-waited) * step):
			}
			waited = turn
		}
		if r, err := n.fsm.Revision(fsm.RecordPurge); err == nil && r > rev {
			rev = r // a newer request came meanwhile: one purge serves both
		}
		start := time.Now()
		stall, err := n.purge(rev)
		if err != nil {
			failures++
			retryAt = time.Now().Add(min(time.Duration(failures)*time.Second, time.Minute))
			n.log.Warn("purging destroyed material from disk failed; retrying", "index", rev, "error", err)
			continue
		}
		failures = 0
		lastStall = stall
		if err := n.setPurgedIndex(rev); err != nil {
			n.log.Warn("recording the purge", "error", err)
		}
		done = rev
		n.log.Info("purged destroyed key material from disk", "index", rev, "took", time.Since(start), "stalled", stall)
	}
}

// purge removes from this node's disk everything older than index that
// the state no longer holds: see the comment at the top of this file.
//
// It returns how long the node stood still: the rewrites of raft.db and
// of the state store hold each file exclusively, so this node neither
// appends nor applies meanwhile.
func (n *Node) purge(index uint64) (stalled time.Duration, err error) {
	select {
	case <-n.closed:
		return 0, ErrClosed
	default:
	}
	if n.fsm.AppliedIndex() < index {
		return 0, fmt.Errorf("cluster: purge of index %d before it was applied", index)
	}
	// 1. A snapshot at or after index, with no trailing log kept.
	rc := n.raft.ReloadableConfig()
	noTrail := rc
	noTrail.TrailingLogs = 0
	if err := n.raft.ReloadConfig(noTrail); err != nil {
		return 0, fmt.Errorf("cluster: purge: %w", err)
	}
	err = n.raft.Snapshot().Error()
	if rerr := n.raft.ReloadConfig(rc); rerr != nil {
		n.log.Error("restoring raft's trailing logs after a purge", "error", rerr)
	}
	if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return 0, fmt.Errorf("cluster: purge: snapshot: %w", err)
	}
	snaps, err := n.snaps.List()
	if err != nil {
		return 0, fmt.Errorf("cluster: purge: listing snapshots: %w", err)
	}
	if len(snaps) == 0 || snaps[0].Index < index {
		return 0, fmt.Errorf("cluster: purge: no snapshot at or after index %d yet", index)
	}
	// Raft compacted the log when it took the snapshot; when there was
	// nothing new to snapshot (another snapshot covered index already, but
	// kept trailing logs), drop the entries it covers here.
	if first, err := n.logs.FirstIndex(); err == nil && first != 0 && first <= snaps[0].Index {
		last, _ := n.logs.LastIndex()
		if err := n.logs.DeleteRange(first, min(snaps[0].Index, last)); err != nil {
			return 0, fmt.Errorf("cluster: purge: compacting the log: %w", err)
		}
	}
	// 2. Every other snapshot, overwritten before it goes.
	if err := n.removeOtherSnapshots(snaps[0]); err != nil {
		return 0, err
	}
	// 3. The bbolt files, without their freed pages.
	from := time.Now()
	defer func() {
		stalled = time.Since(from)
		if hook := onPurgeStall.Load(); hook != nil {
			(*hook)(n, from, from.Add(stalled))
		}
	}()
	if err := n.logs.Compact(); err != nil {
		return 0, err
	}
	c, ok := n.state.(plugins.Compactor)
	if !ok {
		return 0, fmt.Errorf("cluster: purge: the state storage cannot compact: %w", plugins.ErrUnsupported)
	}
	if err := c.Compact(); err != nil {
		return 0, fmt.Errorf("cluster: purge: compacting the state store: %w", err)
	}
	return 0, nil
}

// removeOtherSnapshots overwrites with zeros and removes everything under
// snapshots/ but keep: older snapshots, and also what the snapshot store's
// List skips, so nothing else would ever delete — a snapshot interrupted
// by a crash (a .tmp directory holding a full copy of the state) and a
// directory without a readable meta. Only entries named for an index past
// keep's stay: the store may be writing them now (a snapshot installed
// from the leader), and a later purge covers them.
func (n *Node) removeOtherSnapshots(keep *raft.SnapshotMeta) error {
	dir := filepath.Join(n.cfg.DataDir, "snapshots")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cluster: purge: listing snapshots: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == keep.ID {
			continue
		}
		if idx, ok := snapshotNameIndex(name); ok && idx > keep.Index {
			continue
		}
		if err := n.snaps.removeZeroed(name); err != nil {
			return fmt.Errorf("cluster: purge: deleting snapshot %s: %w", name, err)
		}
	}
	return nil
}

// snapshotNameIndex reads the index out of a snapshot directory's name
// (term-index-milliseconds, with .tmp while it is written).
func snapshotNameIndex(name string) (uint64, bool) {
	parts := strings.Split(strings.TrimSuffix(name, ".tmp"), "-")
	if len(parts) != 3 {
		return 0, false
	}
	idx, err := strconv.ParseUint(parts[1], 10, 64)
	return idx, err == nil
}
