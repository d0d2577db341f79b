package cluster

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/seal"
)

// ErrRekeyNonce: the rekey operation named does not exist (never started,
// cancelled, finished, or started on another node).
var ErrRekeyNonce = errors.New("cluster: no rekey with this nonce is in progress on this node")

// RekeyStatus is an operation in progress (Vault's sys/rekey/init shape).
type RekeyStatus struct {
	Started   bool
	Nonce     string
	Shares    int // new shares
	Threshold int // new threshold
	Required  int // old shares needed
	Progress  int
}

// RekeyResult holds the new shares: unseal shares (Shamir) or recovery
// shares (auto-unseal). Shown once, never stored.
type RekeyResult struct {
	Keys     [][]byte
	Recovery bool
}

type rekeyOp struct {
	mu        sync.Mutex
	nonce     string
	shares    int
	threshold int
	collector seal.ShareCollector
}

// RekeyInit starts replacing the root key and the shares: the new key
// material is made once the threshold of the current shares (unseal
// shares, or recovery shares with an auto-unseal seal) has been given to
// RekeyUpdate. One operation at a time per node: while one is in
// progress a new init returns ErrRekeyInProgress (only RekeyCancel ends it
// early). It returns ErrSealed, or ErrInvalidRequest for bad share
// parameters.
func (n *Node) RekeyInit(shares, threshold int) (RekeyStatus, error) {
	if n.barrier.Sealed() {
		return RekeyStatus{}, ErrSealed
	}
	cfg, err := n.sealConfig()
	if err != nil || cfg == nil {
		return RekeyStatus{}, ErrNotInitialized
	}
	switch {
	case shares < 1 || shares > 255:
		return RekeyStatus{}, fmt.Errorf("%w: secret_shares must be between 1 and 255", ErrInvalidRequest)
	case threshold < 1 || threshold > shares:
		return RekeyStatus{}, fmt.Errorf("%w: secret_threshold must be between 1 and secret_shares", ErrInvalidRequest)
	case shares > 1 && threshold == 1:
		return RekeyStatus{}, fmt.Errorf("%w: secret_threshold must be greater than 1 when there is more than one share", ErrInvalidRequest)
	}
	nonce, err := randomID()
	if err != nil {
		return RekeyStatus{}, err
	}
	op := &rekeyOp{nonce: nonce, shares: shares, threshold: threshold}
	n.rekeyMu.Lock()
	defer n.rekeyMu.Unlock()
	if n.rekey != nil {
		return RekeyStatus{}, ErrRekeyInProgress
	}
	n.rekey = op
	return RekeyStatus{Started: true, Nonce: nonce, Shares: shares, Threshold: threshold, Required: cfg.Threshold}, nil
}

// RekeyCancel drops the operation in progress (and its shares). It
// returns the nonce of the one it cancelled ("" when there was none).
func (n *Node) RekeyCancel() (nonce string) {
	n.rekeyMu.Lock()
	op := n.rekey
	n.rekey = nil
	n.rekeyMu.Unlock()
	if op == nil {
		return ""
	}
	op.collector.Reset()
	return op.nonce
}

// endRekey drops op once it completed, unless a cancel (and maybe a new
// init) replaced it meanwhile.
func (n *Node) endRekey(op *rekeyOp) {
	n.rekeyMu.Lock()
	if n.rekey == op {
		n.rekey = nil
	}
	n.rekeyMu.Unlock()
	op.collector.Reset()
}

// RekeyUpdate takes one current share. Below the threshold it returns
// the progress; at it, it checks the shares, makes a new root key (the
// keyring is rewrapped, not changed) and new shares, commits them and
// returns the new shares. It returns ErrRekeyNonce, ErrSealed,
// ErrInvalidUnsealKey (a malformed share, refused alone; or, at the
// threshold, shares that are not the current ones: progress is reset),
// ErrSealUnavailable, or a commit error.
func (n *Node) RekeyUpdate(ctx context.Context, nonce string, share []byte) (RekeyStatus, *RekeyResult, error) {
	n.rekeyMu.Lock()
	op := n.rekey
	n.rekeyMu.Unlock()
	if op == nil || subtle.ConstantTimeCompare([]byte(op.nonce), []byte(nonce)) != 1 {
		return RekeyStatus{}, nil, ErrRekeyNonce
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	cfg, err := n.sealConfig()
	if err != nil || cfg == nil {
		return RekeyStatus{}, nil, ErrNotInitialized
	}
	st := RekeyStatus{Started: true, Nonce: op.nonce, Shares: op.shares, Threshold: op.threshold, Required: cfg.Threshold}
	// A malformed share is refused alone (see GenerateRootUpdate).
	combined, err := op.collector.Add(share, cfg.Threshold)
	st.Progress = op.collector.Progress()
	if err != nil {
		return st, nil, fmt.Errorf("%w: %v", ErrInvalidUnsealKey, err)
	}
	if combined == nil {
		return st, nil, nil
	}
	defer clear(combined)
	res, err := n.rekeyWith(ctx, cfg, combined, op.shares, op.threshold)
	if err != nil {
		return st, nil, err
	}
	n.endRekey(op)
	st.Progress = 0
	return st, res, nil
}

func (n *Node) rekeyWith(ctx context.Context, cfg *SealConfig, current []byte, shares, threshold int) (*RekeyResult, error) {
	n.sealMu.Lock()
	defer n.sealMu.Unlock()
	if n.barrier.Sealed() {
		return nil, ErrSealed
	}
	auto := cfg.Type != "shamir"
	if err := n.checkCurrentKey(ctx, cfg, current); err != nil {
		return nil, err
	}
	oldRoot := n.rootKeyCopy()
	if oldRoot == nil {
		return nil, ErrSealed
	}
	defer clear(oldRoot)
	keyringBlob, keyringRev, err := n.fsm.Get(fsm.RecordKeyring)
	if err != nil {
		return nil, err
	}
	kr, err := seal.UnwrapKeyring(oldRoot, keyringBlob)
	if err != nil {
		return nil, fmt.Errorf("cluster: opening the keyring: %w", err)
	}
	defer kr.Zero()
	newRoot, err := seal.NewRootKey()
	if err != nil {
		return nil, err
	}
	defer clear(newRoot)
	newKeyringBlob, err := seal.WrapKeyring(newRoot, kr)
	if err != nil {
		return nil, err
	}
	newSecret, err := seal.NewRootKey() // the new unseal or recovery key
	if err != nil {
		return nil, err
	}
	defer clear(newSecret)
	keys, err := seal.Split(newSecret, shares, threshold)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	var wrapper seal.Seal
	var ops []fsm.Op
	if auto {
		if wrapper, err = n.openAutoSeal(ctx); err != nil {
			return nil, err
		}
		ct, err := kr.Encrypt([]byte(fsm.RecordRecoveryKey), newSecret)
		if err != nil {
			return nil, err
		}
		ops = append(ops, fsm.Op{Kind: fsm.OpPut, Key: fsm.RecordRecoveryKey, Value: ct})
	} else {
		sh, err := seal.NewShamir(newSecret)
		if err != nil {
			return nil, err
		}
		defer sh.Zero()
		wrapper = sh
	}
	rootBlob, err := wrapper.Wrap(ctx, newRoot)
	if err != nil {
		return nil, fmt.Errorf("%w: wrapping the new root key: %v", ErrSealUnavailable, err)
	}
	rootCT, err := kr.Encrypt([]byte(fsm.RecordBarrierRootKey), newRoot)
	if err != nil {
		return nil, err
	}
	next := *cfg
	next.Shares, next.Threshold = shares, threshold
	cfgJSON, _ := json.Marshal(next)
	_, cfgRev, err := n.fsm.Get(fsm.RecordSealConfig)
	if err != nil {
		return nil, err
	}
	_, err = n.Apply(ctx, &fsm.Command{
		Conds: []fsm.Cond{{Key: fsm.RecordSealConfig, Revision: cfgRev}, {Key: fsm.RecordKeyring, Revision: keyringRev}},
		Ops: append(ops,
			fsm.Op{Kind: fsm.OpPut, Key: fsm.RecordSealConfig, Value: cfgJSON},
			fsm.Op{Kind: fsm.OpPut, Key: rootKeyRecord(wrapper.Type()), Value: rootBlob},
			fsm.Op{Kind: fsm.OpPut, Key: fsm.RecordKeyring, Value: newKeyringBlob},
			fsm.Op{Kind: fsm.OpPut, Key: fsm.RecordBarrierRootKey, Value: rootCT},
		),
	})
	if errors.Is(err, fsm.ErrConflict) {
		return nil, fmt.Errorf("%w: the keyring or seal changed meanwhile; start the rekey again", ErrInvalidRequest)
	}
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	clear(n.rootKey)
	n.rootKey = bytes.Clone(newRoot)
	n.mu.Unlock()
	n.log.Warn("rekeyed: new root key and new shares", "shares", shares, "threshold", threshold, "recovery", auto)
	n.kickKeyring()
	return &RekeyResult{Keys: keys, Recovery: auto}, nil
}

// adoptBarrierRootKey makes the root key stored under the barrier this
// node's in-memory root key, when a rekey on another node changed it.
// Called with sealMu held, before the keyring is reloaded.
func (n *Node) adoptBarrierRootKey() {
	if n.barrier.Sealed() {
		return
	}
	ct, _, err := n.fsm.Get(fsm.RecordBarrierRootKey)
	if err != nil || ct == nil {
		return
	}
	k, err := n.barrier.Decrypt([]byte(fsm.RecordBarrierRootKey), ct)
	if err != nil {
		n.log.Warn("cannot read the stored root key", "error", err)
		return
	}
	n.mu.Lock()
	if n.rootKey != nil && !bytes.Equal(n.rootKey, k) {
		clear(n.rootKey)
		n.rootKey = k
		n.log.Info("took the new root key after a rekey")
	} else {
		clear(k)
	}
	n.mu.Unlock()
}

// checkCurrentKey reports whether key is the current unseal key (Shamir)
// or recovery key (auto-unseal); ErrInvalidUnsealKey otherwise.
func (n *Node) checkCurrentKey(ctx context.Context, cfg *SealConfig, key []byte) error {
	if cfg.Type != "shamir" {
		stored, _, err := n.Read(fsm.RecordRecoveryKey)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(stored, key) != 1 {
			return fmt.Errorf("%w: the shares do not form the recovery key", ErrInvalidUnsealKey)
		}
		return nil
	}
	sh, err := seal.NewShamir(key)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidUnsealKey, err)
	}
	defer sh.Zero()
	blob, _, _ := n.fsm.Get(fsm.RecordRootKey)
	k, err := sh.Unwrap(ctx, blob)
	if err != nil {
		return fmt.Errorf("%w: the shares do not form the unseal key", ErrInvalidUnsealKey)
	}
	clear(k)
	return nil
}
