package cluster

import (
	"context"
	"fmt"
	"strings"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// Write and Txn are store's: engines import store, not cluster. The
// aliases keep transport/ and cmd/ compiling unchanged until they switch
// (issue 14); remove them then.
type (
	Write = store.Write
	Txn   = store.Txn
)

// Node is the engines' store.
var _ store.Store = (*Node)(nil)

// Read returns the decrypted record at key and its revision; a missing
// record is (nil, 0, nil). It returns ErrSealed while sealed and
// ErrNotReady while the node catches up after a restart.
func (n *Node) Read(key string) ([]byte, uint64, error) {
	if !n.CaughtUp() {
		return nil, 0, ErrNotReady
	}
	ct, rev, err := n.fsm.Get(key)
	if err != nil || ct == nil {
		return nil, 0, err
	}
	pt, err := n.barrier.Decrypt([]byte(key), ct)
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: reading %s: %w", key, err)
	}
	return pt, rev, nil
}

// Revision returns the revision of the record at key without decrypting
// it (0 when absent). Callers use it to validate a cache entry.
func (n *Node) Revision(key string) (uint64, error) {
	if !n.CaughtUp() {
		return 0, ErrNotReady
	}
	return n.fsm.Revision(key)
}

// List returns the keys directly or indirectly under prefix, without the
// prefix, in order. It returns ErrSealed while sealed.
func (n *Node) List(prefix string) ([]string, error) {
	if n.barrier.Sealed() {
		return nil, ErrSealed
	}
	if !n.CaughtUp() {
		return nil, ErrNotReady
	}
	var out []string
	err := n.fsm.Scan(prefix, func(k string, _ []byte, _ uint64) error {
		out = append(out, strings.TrimPrefix(k, prefix))
		return nil
	})
	return out, err
}

// Commit encrypts the txn's values and applies it through Raft. It returns
// the new revision, ErrSealed, an *fsm.ConflictError (read again and
// retry), or an Apply error.
func (n *Node) Commit(ctx context.Context, txn *Txn) (uint64, error) {
	cmd := &fsm.Command{Conds: txn.Expect}
	for _, w := range txn.Writes {
		switch {
		case w.Delete && w.Prefix:
			cmd.Ops = append(cmd.Ops, fsm.Op{Kind: fsm.OpDeletePrefix, Key: w.Key})
		case w.Delete:
			cmd.Ops = append(cmd.Ops, fsm.Op{Kind: fsm.OpDelete, Key: w.Key})
		default:
			ct, err := n.barrier.Encrypt([]byte(w.Key), w.Value)
			if err != nil {
				return 0, err
			}
			cmd.Ops = append(cmd.Ops, fsm.Op{Kind: fsm.OpPut, Key: w.Key, Value: ct})
		}
	}
	res, err := n.Apply(ctx, cmd)
	if err != nil {
		return 0, err
	}
	return res.Index, nil
}
