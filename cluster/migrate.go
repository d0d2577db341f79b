package cluster

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/seal"
)

// ErrNoMigration: an unseal asked to migrate the seal, but this node is
// not configured for a migration (or there is nothing to migrate).
var ErrNoMigration = errors.New("cluster: no seal migration is configured on this node")

// migrating reports whether this node is configured to move the cluster
// from one seal to another and the state still has the old one.
func (n *Node) migrating() (from string, ok bool) {
	cfg, _ := n.sealConfig()
	if cfg == nil {
		return "", false
	}
	switch {
	case n.cfg.AutoSeal != nil && n.cfg.MigrateFromShamir && cfg.Type == "shamir":
		return "shamir", true
	case n.cfg.AutoSeal == nil && n.cfg.OldAutoSeal != nil && cfg.Type == n.cfg.OldAutoSealType:
		return cfg.Type, true
	}
	return "", false
}

// UnsealMigrate takes one share for a seal migration (Vault's `operator
// unseal -migrate`). Shamir → PKCS#11: the shares are the unseal shares;
// at the threshold the node unseals with them, wraps the root key with its
// HSM seal and commits the switch (the unseal key becomes the recovery
// key). PKCS#11 → Shamir: the shares are the recovery shares; the node
// unseals with the old HSM seal, checks the recovery key, wraps the root
// key with it (it becomes the unseal key) and commits the switch. Other
// nodes then restart with the new seal configuration: HSM nodes unseal
// themselves, Shamir nodes take the same shares. No stored value changes:
// the keyring and the root key stay, only the root key's wrapping moves.
//
// It returns ErrNoMigration when this node is not configured to migrate,
// ErrInvalidUnsealKey for wrong shares, ErrSealUnavailable when a seal
// cannot be used, or a commit error.
func (n *Node) UnsealMigrate(ctx context.Context, share []byte) (SealStatus, error) {
	from, ok := n.migrating()
	if !ok {
		return n.SealStatus(), ErrNoMigration
	}
	if !n.CaughtUp() {
		return n.SealStatus(), ErrNotReady
	}
	cfg, err := n.sealConfig()
	if err != nil {
		return n.SealStatus(), err
	}
	shamir, combined, err := n.takeShare(share, cfg.Threshold)
	if err != nil || shamir == nil {
		return n.SealStatus(), err
	}
	defer clear(combined)
	defer shamir.Zero()
	if from == "shamir" {
		err = n.migrateToAuto(ctx, shamir, combined, cfg)
	} else {
		err = n.migrateToShamir(ctx, shamir, combined, cfg)
	}
	return n.SealStatus(), err
}

// migrateToAuto: unseal with the old Shamir shares, then rewrap the root
// key with the HSM.
func (n *Node) migrateToAuto(ctx context.Context, shamir *seal.Shamir, unsealKey []byte, cfg *SealConfig) error {
	if n.barrier.Sealed() {
		if err := n.unsealWithSeal(ctx, shamir); err != nil {
			return err
		}
	}
	auto, err := n.openAutoSeal(ctx)
	if err != nil {
		return err
	}
	n.mu.Lock()
	rootKey := append([]byte(nil), n.rootKey...)
	n.mu.Unlock()
	defer clear(rootKey)
	if len(rootKey) == 0 {
		return ErrSealed
	}
	blob, err := auto.Wrap(ctx, rootKey)
	if err != nil {
		return fmt.Errorf("%w: wrapping the root key with the %s seal: %v", ErrSealUnavailable, auto.Type(), err)
	}
	recoveryCT, err := n.barrier.Encrypt([]byte(fsm.RecordRecoveryKey), unsealKey)
	if err != nil {
		return err
	}
	next := *cfg
	next.Type = auto.Type()
	return n.commitSealSwitch(ctx, next, []fsm.Op{
		{Kind: fsm.OpPut, Key: rootKeyRecord(auto.Type()), Value: blob},
		{Kind: fsm.OpPut, Key: fsm.RecordRecoveryKey, Value: recoveryCT},
		{Kind: fsm.OpDelete, Key: rootKeyRecord("shamir")},
	})
}

// migrateToShamir: unseal with the old HSM seal, check the recovery key,
// then wrap the root key with it (it becomes the unseal key).
func (n *Node) migrateToShamir(ctx context.Context, shamir *seal.Shamir, recoveryKey []byte, cfg *SealConfig) error {
	if n.barrier.Sealed() {
		old, err := n.cfg.OldAutoSeal(ctx)
		if err != nil {
			return fmt.Errorf("%w: opening the old %s seal: %v", ErrSealUnavailable, n.cfg.OldAutoSealType, err)
		}
		err = n.unsealWithSeal(ctx, old)
		if c, ok := old.(interface{ Close() error }); ok {
			c.Close()
		}
		if err != nil {
			return err
		}
	}
	stored, _, err := n.Read(fsm.RecordRecoveryKey)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(stored, recoveryKey) != 1 {
		// The barrier was opened by the HSM, not by these shares: do not
		// stay unsealed on the strength of a wrong recovery key.
		n.sealInternal()
		return fmt.Errorf("%w: the recovery shares do not form the recovery key", ErrInvalidUnsealKey)
	}
	n.mu.Lock()
	rootKey := append([]byte(nil), n.rootKey...)
	n.mu.Unlock()
	defer clear(rootKey)
	blob, err := shamir.Wrap(ctx, rootKey)
	if err != nil {
		return err
	}
	next := *cfg
	next.Type = "shamir"
	return n.commitSealSwitch(ctx, next, []fsm.Op{
		{Kind: fsm.OpPut, Key: rootKeyRecord("shamir"), Value: blob},
		{Kind: fsm.OpDelete, Key: rootKeyRecord(cfg.Type)},
		{Kind: fsm.OpDelete, Key: fsm.RecordRecoveryKey},
	})
}

// commitSealSwitch commits the new seal configuration with the new
// wrapping, unless another node switched first.
func (n *Node) commitSealSwitch(ctx context.Context, next SealConfig, ops []fsm.Op) error {
	_, rev, err := n.fsm.Get(fsm.RecordSealConfig)
	if err != nil {
		return err
	}
	cfgJSON, _ := json.Marshal(next)
	_, err = n.Apply(ctx, &fsm.Command{
		Conds: []fsm.Cond{{Key: fsm.RecordSealConfig, Revision: rev}},
		Ops:   append([]fsm.Op{{Kind: fsm.OpPut, Key: fsm.RecordSealConfig, Value: cfgJSON}}, ops...),
	})
	if errors.Is(err, fsm.ErrConflict) {
		return fmt.Errorf("%w: the seal configuration changed meanwhile (another node migrated?)", ErrInvalidRequest)
	}
	if err != nil {
		return err
	}
	n.log.Warn("seal migrated", "to", next.Type)
	return nil
}
