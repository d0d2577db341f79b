package transit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// Encryption counting. AES-GCM and ChaCha20-Poly1305 with random 96-bit
// nonces stay within NIST SP 800-38D's collision bound for 2^32
// encryptions under one key; past that a repeated nonce (which reveals
// the authentication key) becomes likely enough to matter. Each node
// counts the encryptions it makes per key version in memory (one atomic
// add on the hot path) and folds its counts into the replicated record
// transit/usage/<name> every few seconds (FlushUsage); the leader
// rotates a key whose newest version passed its share of the limit.
// The count is approximate: a node that dies loses its last few seconds
// of counts, which at any realistic rate is far below the margin a share
// of 0.5 leaves.

// SafeEncryptions is the number of random-nonce encryptions one version
// may make (2^32).
const SafeEncryptions = 1 << 32

// DefaultAutoRotateShare is the share of SafeEncryptions at which the
// leader rotates a key by default.
const DefaultAutoRotateShare = 0.5

// usageRecord is the replicated count of a key's encryptions per version.
type usageRecord struct {
	Encryptions map[int]uint64 `json:"encryptions"`
}

type usageKey struct {
	name    string
	version int
}

// usageCounts holds a node's counts not yet folded into the records.
type usageCounts struct {
	m sync.Map // usageKey → *atomic.Uint64
}

func (u *usageCounts) add(name string, version int, n uint64) {
	k := usageKey{name, version}
	c, ok := u.m.Load(k)
	if !ok {
		c, _ = u.m.LoadOrStore(k, new(atomic.Uint64))
	}
	c.(*atomic.Uint64).Add(n)
}

// pending returns the node's uncommitted count of one version.
func (u *usageCounts) pending(name string, version int) uint64 {
	if c, ok := u.m.Load(usageKey{name, version}); ok {
		return c.(*atomic.Uint64).Load()
	}
	return 0
}

// countsUsage reports whether encryptions under p's type are counted:
// the AEAD types, whose nonces are random 96-bit values.
func countsUsage(p *Policy) bool { return p.Type.IsAEAD() }

// countEncryption records one encryption made with a version of p.
func (e *Engine) countEncryption(p *Policy, version int) {
	if countsUsage(p) {
		e.usage.add(p.Name, version, 1)
	}
}

func (lc *Lifecycle) rotateShare() float64 {
	if lc == nil || lc.AutoRotateShare == 0 {
		return DefaultAutoRotateShare
	}
	return lc.AutoRotateShare
}

// rotateShare reads an auto_rotate_share parameter: a number in (0, 1].
func rotateShare(in *Fields) (float64, error) {
	s, err := in.String("auto_rotate_share", "")
	if err != nil {
		return 0, err
	}
	v, perr := strconv.ParseFloat(s, 64)
	if perr != nil || !(v > 0 && v <= 1) {
		return 0, badRequest("auto_rotate_share must be a number above 0 and at most 1 (a share of 2^32 encryptions), got %q", Truncate(s))
	}
	return v, nil
}

// readUsage reads a key's committed counts and the record's revision.
func (e *Engine) readUsage(name string) (*usageRecord, uint64, error) {
	raw, rev, err := e.store.Read(fsm.RecordTransitUsage + name)
	if err != nil || raw == nil {
		return &usageRecord{Encryptions: map[int]uint64{}}, rev, err
	}
	var u usageRecord
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, 0, fmt.Errorf("transit: decoding usage record of %q: %w", name, err)
	}
	if u.Encryptions == nil {
		u.Encryptions = map[int]uint64{}
	}
	return &u, rev, nil
}

// usageInfo adds "encryptions" (per version: committed plus this node's
// pending count) and the rotation threshold to a key read.
func (e *Engine) usageInfo(p *Policy, d map[string]any) {
	if !countsUsage(p) {
		return
	}
	u, _, err := e.readUsage(p.Name)
	if err != nil {
		e.log.Warn("reading usage record", "key", p.Name, "error", err)
		u = &usageRecord{Encryptions: map[int]uint64{}}
	}
	counts := map[string]uint64{}
	for n := range p.Versions {
		counts[strconv.Itoa(n)] = u.Encryptions[n] + e.usage.pending(p.Name, n)
	}
	d["encryptions"] = counts
	d["encryption_limit"] = uint64(SafeEncryptions)
	d["auto_rotate_encryptions"] = uint64(p.Lifecycle.rotateShare() * SafeEncryptions)
}

// FlushUsage folds this node's pending encryption counts into the
// replicated usage records: one commit for up to usageFlushKeys keys, so
// a node with many busy keys adds a few Raft entries per flush, not one
// per key. Every unsealed node calls it periodically. Counts that fail to
// commit stay pending; counts of a key deleted meanwhile are dropped.
func (e *Engine) FlushUsage(ctx context.Context) error {
	deltas := map[string]map[int]uint64{}
	e.usage.m.Range(func(k, v any) bool {
		if n := v.(*atomic.Uint64).Swap(0); n > 0 {
			uk := k.(usageKey)
			if deltas[uk.name] == nil {
				deltas[uk.name] = map[int]uint64{}
			}
			deltas[uk.name][uk.version] += n
		}
		return true
	})
	names := slices.Sorted(maps.Keys(deltas))
	var errs []error
	for len(names) > 0 {
		chunk := names[:min(len(names), usageFlushKeys)]
		names = names[len(chunk):]
		if err := e.commitUsage(ctx, chunk, deltas); err != nil {
			for _, name := range chunk {
				for v, n := range deltas[name] {
					e.usage.add(name, v, n)
				}
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// usageFlushKeys bounds the keys of one usage commit.
const usageFlushKeys = 256

// commitUsage adds the deltas of names to their usage records in one
// read-modify-write commit, retried on conflict.
func (e *Engine) commitUsage(ctx context.Context, names []string, deltas map[string]map[int]uint64) error {
	for attempt := 0; ; attempt++ {
		txn := &store.Txn{}
		for _, name := range names {
			keyRev, err := e.store.Revision(fsm.RecordTransitKey + name)
			if err != nil {
				return err
			}
			if keyRev == 0 {
				continue // deleted: its counts go with it
			}
			// The key's revision is a condition of the commit: a delete
			// (which removes the usage record) committed meanwhile makes
			// this a conflict, so the counts never recreate the record of
			// a key that is gone.
			txn.Expect = append(txn.Expect, fsm.Cond{Key: fsm.RecordTransitKey + name, Revision: keyRev})
			u, rev, err := e.readUsage(name)
			if err != nil {
				return err
			}
			for v, n := range deltas[name] {
				u.Encryptions[v] += n
			}
			b, err := json.Marshal(u)
			if err != nil {
				return err
			}
			txn.Expect = append(txn.Expect, fsm.Cond{Key: fsm.RecordTransitUsage + name, Revision: rev})
			txn.Writes = append(txn.Writes, store.Write{Key: fsm.RecordTransitUsage + name, Value: b})
		}
		if len(txn.Writes) == 0 {
			return nil
		}
		_, err := e.store.Commit(ctx, txn)
		if errors.Is(err, store.ErrConflict) && attempt < 10 {
			continue
		}
		return err
	}
}

// overUsed reports whether the newest version of p has reached its
// share of SafeEncryptions in the committed counts.
func (e *Engine) overUsed(p *Policy) (bool, uint64, error) {
	if !countsUsage(p) {
		return false, 0, nil
	}
	u, _, err := e.readUsage(p.Name)
	if err != nil {
		return false, 0, err
	}
	n := u.Encryptions[p.LatestVersion]
	return float64(n) >= p.Lifecycle.rotateShare()*SafeEncryptions, n, nil
}
