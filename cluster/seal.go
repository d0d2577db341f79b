package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/seal"
)

// SealConfig is stored in the clear: it holds no secret.
type SealConfig struct {
	// Type is the seal that wraps the root key: "shamir", or an
	// auto-unseal seal ("pkcs11"), for which Shares and Threshold are
	// those of the recovery key.
	Type        string    `json:"type"`
	Shares      int       `json:"secret_shares"`
	Threshold   int       `json:"secret_threshold"`
	ClusterID   string    `json:"cluster_id"`
	InitialTime time.Time `json:"initialized_at"`
}

// InitRequest asks for a new root of trust. With an auto-unseal seal the
// recovery shares count and the secret shares are ignored.
type InitRequest struct {
	SecretShares      int
	SecretThreshold   int
	RecoveryShares    int
	RecoveryThreshold int
	// RootTokenID, when set, becomes the root token (dev mode); otherwise
	// a random one is made.
	RootTokenID string
}

// InitResult is shown to the operator once and never stored.
type InitResult struct {
	Keys [][]byte
	// RecoveryKeys are the shares of the recovery key (auto-unseal only).
	RecoveryKeys [][]byte
	RootToken    string
}

// SealStatus is the seal-status view of a node.
type SealStatus struct {
	Type        string
	Initialized bool
	Sealed      bool
	Threshold   int
	Shares      int
	Progress    int
	ClusterName string
	ClusterID   string
	// RecoverySeal is true with an auto-unseal seal: the shares are
	// recovery shares, and the node unseals itself.
	RecoverySeal bool
	// Migration is true while this node is configured to move the
	// cluster to another seal and waits for 'unseal -migrate'.
	Migration bool
}

// Init creates the root of trust: a fresh unseal key split into shares,
// a root key wrapped by it, a barrier keyring wrapped by the root key and
// a root token, committed in one entry. The node stays sealed. It returns
// ErrAlreadyInitialized, ErrInvalidRequest for bad share parameters, or
// an Apply error.
func (n *Node) Init(ctx context.Context, req InitRequest) (*InitResult, error) {
	if cfg, _ := n.sealConfig(); cfg != nil {
		return nil, ErrAlreadyInitialized
	}
	if n.Joining() {
		return nil, fmt.Errorf("%w: this node is joining a cluster; unseal it with that cluster's keys", ErrInvalidRequest)
	}
	auto, err := n.openAutoSeal(ctx)
	if err != nil {
		return nil, err
	}
	shares, threshold, kind := req.SecretShares, req.SecretThreshold, "secret"
	if auto != nil {
		shares, threshold, kind = req.RecoveryShares, req.RecoveryThreshold, "recovery"
		if shares == 0 && threshold == 0 {
			shares, threshold = 5, 3 // Vault's defaults
		}
	}
	if shares < 1 || shares > 255 {
		return nil, fmt.Errorf("%w: %s_shares must be between 1 and 255", ErrInvalidRequest, kind)
	}
	if threshold < 1 || threshold > shares {
		return nil, fmt.Errorf("%w: %s_threshold must be between 1 and %s_shares", ErrInvalidRequest, kind, kind)
	}
	if shares > 1 && threshold == 1 {
		return nil, fmt.Errorf("%w: %s_threshold must be greater than 1 when there is more than one share", ErrInvalidRequest, kind)
	}
	// The unseal key (Shamir) or the recovery key (auto-unseal) is split
	// into the operators' shares.
	unsealKey, err := seal.NewRootKey()
	if err != nil {
		return nil, err
	}
	defer clear(unsealKey)
	keyShares, err := seal.Split(unsealKey, shares, threshold)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	var wrapper seal.Seal = auto
	if auto == nil {
		shamir, err := seal.NewShamir(unsealKey)
		if err != nil {
			return nil, err
		}
		defer shamir.Zero()
		wrapper = shamir
	}
	rootKey, err := seal.NewRootKey()
	if err != nil {
		return nil, err
	}
	defer clear(rootKey)
	rootBlob, err := wrapper.Wrap(ctx, rootKey)
	if err != nil {
		return nil, fmt.Errorf("cluster: wrapping the root key with the %s seal: %w", wrapper.Type(), err)
	}
	now := time.Now().UTC()
	keyring, err := seal.NewKeyring(now)
	if err != nil {
		return nil, err
	}
	defer keyring.Zero()
	keyringBlob, err := seal.WrapKeyring(rootKey, keyring)
	if err != nil {
		return nil, err
	}
	token := req.RootTokenID
	if token == "" {
		if token, err = access.NewToken(); err != nil {
			return nil, err
		}
	}
	entry, err := access.NewTokenEntry(token, []string{"root"}, now)
	if err != nil {
		return nil, err
	}
	entryJSON, _ := json.Marshal(entry)
	tokenKey := access.TokenRecord(token)
	tokenCT, err := keyring.Encrypt([]byte(tokenKey), entryJSON)
	if err != nil {
		return nil, err
	}
	clusterID, err := randomID()
	if err != nil {
		return nil, err
	}
	cfgJSON, _ := json.Marshal(SealConfig{
		Type: wrapper.Type(), Shares: shares, Threshold: threshold,
		ClusterID: clusterID, InitialTime: now,
	})
	var recoveryOps []fsm.Op
	if auto != nil {
		// The recovery key authorizes what the seal cannot: generating a
		// root token, rekey, migration back to Shamir (where it becomes
		// the unseal key).
		ct, err := keyring.Encrypt([]byte(fsm.RecordRecoveryKey), unsealKey)
		if err != nil {
			return nil, err
		}
		recoveryOps = append(recoveryOps, fsm.Op{Kind: fsm.OpPut, Key: fsm.RecordRecoveryKey, Value: ct})
	}
	auditKey := make([]byte, 32)
	if _, err := rand.Read(auditKey); err != nil {
		return nil, err
	}
	defer clear(auditKey)
	auditKeyCT, err := keyring.Encrypt([]byte(fsm.RecordAuditHMACKey), auditKey)
	if err != nil {
		return nil, err
	}
	auditPub, auditPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	defer clear(auditPriv)
	auditPrivCT, err := keyring.Encrypt([]byte(fsm.RecordAuditSigningKey), auditPriv.Seed())
	if err != nil {
		return nil, err
	}
	pkiOps, ca, gossipKey, err := initPKI(keyring, clusterID)
	if err != nil {
		return nil, err
	}
	// The node that is initialized founds the cluster (nodes that join
	// never bootstrap).
	if err := n.Bootstrap(ctx); err != nil {
		return nil, err
	}
	_, err = n.Apply(ctx, &fsm.Command{
		Conds: []fsm.Cond{{Key: fsm.RecordSealConfig, Revision: 0}},
		Ops: append([]fsm.Op{
			{Kind: fsm.OpPut, Key: fsm.RecordSealConfig, Value: cfgJSON},
			{Kind: fsm.OpPut, Key: rootKeyRecord(wrapper.Type()), Value: rootBlob},
			{Kind: fsm.OpPut, Key: fsm.RecordKeyring, Value: keyringBlob},
			{Kind: fsm.OpPut, Key: tokenKey, Value: tokenCT},
			{Kind: fsm.OpPut, Key: fsm.RecordAuditHMACKey, Value: auditKeyCT},
			{Kind: fsm.OpPut, Key: fsm.RecordAuditSigningKey, Value: auditPrivCT},
			{Kind: fsm.OpPut, Key: fsm.RecordAuditPublicKey, Value: auditPub},
		}, append(pkiOps, recoveryOps...)...),
	})
	if errors.Is(err, fsm.ErrConflict) {
		return nil, ErrAlreadyInitialized
	}
	if err != nil {
		return nil, err
	}
	if n.ident.Load() == nil {
		tlsID, err := ca.IssueIdentity(n.cfg.NodeID, now, nodeCertLifetime)
		if err != nil {
			return nil, err
		}
		if err := n.installIdentity(&localIdentity{TLS: tlsID, GossipKey: gossipKey}); err != nil {
			return nil, err
		}
	}
	n.log.Info("initialized", "seal", wrapper.Type(), "shares", shares, "threshold", threshold)
	if auto != nil {
		if err := n.unsealWithSeal(ctx, auto); err != nil {
			return nil, err
		}
		return &InitResult{RecoveryKeys: keyShares, RootToken: token}, nil
	}
	return &InitResult{Keys: keyShares, RootToken: token}, nil
}

func (n *Node) sealConfig() (*SealConfig, error) {
	v, _, err := n.fsm.Get(fsm.RecordSealConfig)
	if err != nil || v == nil {
		return nil, err
	}
	var c SealConfig
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("cluster: reading seal config: %w", err)
	}
	return &c, nil
}

// Unseal adds one unseal share. When the threshold is reached it combines
// the shares, unwraps the root key and loads the keyring. It returns
// ErrNotReady while the node catches up after a restart, ErrNotInitialized, ErrInvalidUnsealKey (malformed share, or shares that
// do not combine to the unseal key; progress is reset), or nil with the
// status after the share.
func (n *Node) Unseal(ctx context.Context, share []byte) (SealStatus, error) {
	if _, ok := n.migrating(); ok {
		return n.SealStatus(), fmt.Errorf("%w: this node is configured to migrate the seal: unseal it with -migrate", ErrInvalidRequest)
	}
	if n.cfg.AutoSeal != nil {
		return n.SealStatus(), ErrAutoSeal
	}
	if !n.CaughtUp() {
		return n.SealStatus(), ErrNotReady
	}
	cfg, err := n.sealConfig()
	if err != nil {
		return SealStatus{}, err
	}
	n.mu.Lock()
	join := n.joining
	n.mu.Unlock()
	if cfg == nil && join != nil {
		cfg = &join.config
	}
	if cfg == nil {
		return n.SealStatus(), ErrNotInitialized
	}
	if !n.barrier.Sealed() {
		return n.SealStatus(), nil
	}
	shamir, combined, err := n.takeShare(share, cfg.Threshold)
	if err != nil || shamir == nil {
		return n.SealStatus(), err
	}
	defer clear(combined)
	defer shamir.Zero()
	if join != nil {
		if err := n.completeJoin(ctx, join, shamir); err != nil {
			return n.SealStatus(), err
		}
		return n.SealStatus(), nil
	}
	if err := n.unsealWithSeal(ctx, shamir); err != nil {
		return n.SealStatus(), err
	}
	return n.SealStatus(), nil
}

// takeShare adds one share toward threshold. Below it, it returns nils;
// at it, the combined key and a Shamir seal around it (the caller zeroes
// both). A bad share resets the progress and returns ErrInvalidUnsealKey.
func (n *Node) takeShare(share []byte, threshold int) (*seal.Shamir, []byte, error) {
	combined, err := n.shares.Add(share, threshold)
	if err != nil {
		n.shares.Reset()
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidUnsealKey, err)
	}
	if combined == nil {
		return nil, nil, nil
	}
	shamir, err := seal.NewShamir(combined)
	if err != nil {
		clear(combined)
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidUnsealKey, err)
	}
	return shamir, combined, nil
}

// unsealWithSeal unwraps the root key with s (Shamir from shares, or the
// auto-unseal seal) and loads the keyring and the audit keys.
func (n *Node) unsealWithSeal(ctx context.Context, s seal.Seal) error {
	// Seal and unseal exclude each other, so a Seal in the middle of an
	// unseal cannot leave a sealed barrier with keys still in memory.
	n.sealMu.Lock()
	defer n.sealMu.Unlock()
	rootBlob, _, err := n.fsm.Get(rootKeyRecord(s.Type()))
	if err != nil {
		return err
	}
	if rootBlob == nil {
		return fmt.Errorf("%w: the state holds no root key wrapped by a %s seal", ErrInvalidUnsealKey, s.Type())
	}
	keyringBlob, keyringRev, err := n.fsm.Get(fsm.RecordKeyring)
	if err != nil {
		return err
	}
	rootKey, err := s.Unwrap(ctx, rootBlob)
	if err != nil {
		if s.Type() == "shamir" {
			n.log.Warn("unseal attempt failed: the shares do not form the unseal key")
			return fmt.Errorf("%w: the shares do not form the unseal key", ErrInvalidUnsealKey)
		}
		return fmt.Errorf("%w: the %s seal cannot unwrap the root key: %v", ErrSealUnavailable, s.Type(), err)
	}
	if err := n.barrier.Unseal(rootKey, keyringBlob); err != nil {
		clear(rootKey)
		return fmt.Errorf("cluster: loading keyring: %w", err)
	}
	auditKey, _, err := n.Read(fsm.RecordAuditHMACKey)
	if err != nil || len(auditKey) != 32 {
		n.barrier.Seal()
		clear(rootKey)
		return fmt.Errorf("cluster: loading the audit HMAC key: %v", err)
	}
	seed, _, err := n.Read(fsm.RecordAuditSigningKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		n.barrier.Seal()
		clear(rootKey)
		clear(auditKey)
		return fmt.Errorf("cluster: loading the audit signing key: %v", err)
	}
	n.keyringRev.Store(keyringRev)
	n.keyringBadRev = 0
	n.mu.Lock()
	n.rootKey = rootKey
	n.auditKey = auditKey
	n.auditHMAC = audit.NewHMACKey(auditKey)
	n.auditSigner = ed25519.NewKeyFromSeed(seed)
	clear(seed)
	n.unsealed = time.Now()
	n.unsealedRoot = rootBlob
	n.mu.Unlock()
	n.log.Info("unsealed")
	// A rotation that applied while this node unsealed is loaded now.
	n.kickKeyring()
	if n.isMember() {
		go n.audit.flushHeld()
	}
	n.trustStateCA()
	n.updateGossipMeta()
	return nil
}

// ResetUnseal forgets the shares given so far.
func (n *Node) ResetUnseal() { n.shares.Reset() }

// Seal zeroes the keyring and the root key and runs the OnSeal hooks
// (which drop caches of unwrapped keys). A sealed node serves only status
// and unseal.
func (n *Node) Seal() {
	n.operatorSealed.Store(true)
	n.sealInternal()
}

// sealInternal seals without the operator's say: an auto-unseal node
// unseals itself again (after a restore, say).
func (n *Node) sealInternal() {
	n.sealMu.Lock()
	defer n.sealMu.Unlock()
	n.barrier.Seal()
	n.shares.Reset()
	n.mu.Lock()
	clear(n.rootKey)
	n.rootKey = nil
	clear(n.auditKey)
	n.auditKey = nil
	n.auditHMAC = nil
	clear(n.auditSigner)
	n.auditSigner = nil
	n.unsealedRoot = nil
	hooks := append([]func(){}, n.onSeal...)
	n.mu.Unlock()
	for _, h := range hooks {
		h()
	}
	n.updateGossipMeta()
}

// OnSeal registers fn to run every time the node seals.
func (n *Node) OnSeal(fn func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onSeal = append(n.onSeal, fn)
}

// Sealed reports whether the barrier is sealed.
func (n *Node) Sealed() bool { return n.barrier.Sealed() }

// SealStatus reports the seal state for /v1/sys/seal-status.
func (n *Node) SealStatus() SealStatus {
	st := SealStatus{Type: "shamir", Sealed: n.barrier.Sealed(), ClusterName: n.cfg.ClusterName}
	if n.cfg.AutoSeal != nil {
		st.Type, st.RecoverySeal = n.cfg.AutoSealType, true
	}
	cfg, err := n.sealConfig()
	if cfg == nil && err == nil {
		n.mu.Lock()
		if n.joining != nil {
			c := n.joining.config
			cfg = &c
		}
		n.mu.Unlock()
	}
	if err != nil || cfg == nil {
		return st
	}
	st.Type = cfg.Type
	st.RecoverySeal = cfg.Type != "shamir"
	st.Initialized = true
	_, st.Migration = n.migrating()
	st.Threshold = cfg.Threshold
	st.Shares = cfg.Shares
	st.ClusterID = cfg.ClusterID
	if st.Sealed {
		st.Progress = n.shares.Progress()
	}
	return st
}

// Initialized reports whether the cluster has a root of trust.
func (n *Node) Initialized() bool {
	cfg, _ := n.sealConfig()
	return cfg != nil
}

// DevInit initializes with one share and unseals at once, for -dev.
func (n *Node) DevInit(ctx context.Context, rootToken string) (*InitResult, error) {
	res, err := n.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1, RootTokenID: rootToken})
	if err != nil {
		return nil, err
	}
	if _, err := n.Unseal(ctx, res.Keys[0]); err != nil {
		return nil, err
	}
	return res, nil
}

func randomID() (string, error) { return access.NewID() }
