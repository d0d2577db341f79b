package transport

import (
	"context"
	"crypto/ed25519"
	"io"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/plugins/catalog"
	"github.com/keyraft/keyraft/seal"
	"github.com/keyraft/keyraft/store"
)

// Node is what the API needs of the node it serves, as the small
// interfaces below: the replicated store, the seal, the ceremonies, the
// audit log, the Raft cluster and the plugin catalog. *cluster.Node is
// the one implementation that runs; a test may give the API a node of
// its own (see pipeline_test.go), so that the pipeline is tested without
// Raft.
type Node interface {
	store.Store
	Sealer
	Ceremonies
	AuditLog
	RaftCluster
	PluginCatalog
}

// Sealer is the node's seal: its state, the unseal (shares or the
// auto-unseal seal), the keyring it guards.
type Sealer interface {
	Sealed() bool
	SealStatus() cluster.SealStatus
	// SealHealth reports whether the auto-unseal seal passes its checks
	// and why not.
	SealHealth() (ok bool, reason string)
	AutoSealed() bool
	Initialized() bool
	Init(ctx context.Context, req cluster.InitRequest) (*cluster.InitResult, error)
	Unseal(ctx context.Context, share []byte) (cluster.SealStatus, error)
	UnsealMigrate(ctx context.Context, share []byte) (cluster.SealStatus, error)
	ResetUnseal()
	Seal()
	// OnSeal runs fn each time the node seals.
	OnSeal(fn func())
	KeyStatus() (seal.KeyStatus, error)
	RotateKeyring(ctx context.Context) (uint32, error)
	RotationStatus() (cluster.RotationStatus, error)
	// SealSnapshotSums and OpenSnapshotSums seal and open a snapshot
	// archive's checksums with the keyring (its SHA256SUMS.sealed).
	SealSnapshotSums(sums []byte) ([]byte, error)
	OpenSnapshotSums(sealed []byte) ([]byte, error)
	// Access is the node's access control, which lives as long as the
	// node (Config.Access defaults to it).
	Access() *access.Service
}

// Ceremonies are the share-holder ceremonies: generate-root, rekey and
// break-glass. Each is one at a time per node, named by its nonce.
type Ceremonies interface {
	GenerateRootInit() (nonce, otp string, required int, err error)
	GenerateRootUpdate(ctx context.Context, nonce string, share []byte) (progress, required int, encoded string, err error)
	GenerateRootProgress() (nonce string, progress int, ok bool)
	GenerateRootCancel() (nonce string)
	RekeyInit(shares, threshold int) (cluster.RekeyStatus, error)
	RekeyUpdate(ctx context.Context, nonce string, share []byte) (cluster.RekeyStatus, *cluster.RekeyResult, error)
	RekeyCancel() (nonce string)
	BreakGlassInit(duration time.Duration) (nonce, otp string, required int, err error)
	BreakGlassUpdate(ctx context.Context, nonce string, share []byte, now time.Time) (progress, required int, encoded string, s *access.BreakGlassSession, err error)
	BreakGlassProgress() (nonce string, progress int, duration time.Duration, ok bool)
	BreakGlassCancel() (nonce string)
}

// AuditLog is the replicated audit log: its events and checkpoints, its
// devices, compaction, and the HMAC that hides sensitive values.
type AuditLog interface {
	AuditEvents(fromSeq uint64, fn func(e *audit.Event) error) error
	AuditCheckpoints(fromSeq uint64, fn func(cp *audit.Checkpoint) error) error
	AuditBase() (*audit.Checkpoint, error)
	AuditHead() fsm.AuditHead
	AuditHeadSeq() uint64
	AuditPublicKey() ed25519.PublicKey
	AuditHMAC(value []byte) (string, bool)
	AuditDevices() ([]audit.Device, error)
	PutAuditDevice(ctx context.Context, d audit.Device) error
	DeleteAuditDevice(ctx context.Context, name string) (bool, error)
	AuditDeliveredThrough() (uint64, string, error)
	CommittedAuditCursor(device string) (audit.Position, bool)
	Checkpoint(ctx context.Context) (*audit.Checkpoint, error)
	CompactAudit(ctx context.Context, upTo, delivered uint64) (uint64, error)
	VerifyAudit() (*cluster.AuditVerification, error)
}

// RaftCluster is the node as a member of the Raft cluster: leadership,
// the lease that allows key use, membership, joins and snapshots.
type RaftCluster interface {
	Config() cluster.Config
	IsLeader() bool
	Leader() (addr, id string)
	LeaderAPIAddr() string
	// CheckLease returns nil while the node may serve key use (it is in
	// touch with a leader).
	CheckLease() error
	RaftIndexes() (committed, applied uint64)
	Members() []cluster.Member
	Peers() ([]cluster.Peer, error)
	RemovePeer(ctx context.Context, id string) error
	IsMember() bool
	Joining() bool
	JoinChallenge(ctx context.Context, nodeID string) (*cluster.JoinChallenge, error)
	AdmitNode(ctx context.Context, a cluster.JoinAnswer) (*cluster.JoinGrant, error)
	PrepareJoin(ch *cluster.JoinChallenge, send func(context.Context, cluster.JoinAnswer) (*cluster.JoinGrant, error)) error
	CompleteAutoJoin(ctx context.Context) error
	// OpenSnapshot opens a snapshot of the state: its Raft meta (with
	// the stream's size) and the raw state-machine stream.
	OpenSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error)
	RestoreSnapshot(ctx context.Context, file *os.File) (fsm.AuditHead, error)
}

// PluginCatalog is the replicated catalog of crypto-backend plugins.
type PluginCatalog interface {
	Plugins(typ string) ([]catalog.Entry, error)
	PluginEntry(typ, name string) (*catalog.Entry, error)
	RegisterPlugin(ctx context.Context, e catalog.Entry) error
	DeregisterPlugin(ctx context.Context, typ, name string) error
	ReloadPlugin(ctx context.Context, typ, name string) error
}

var _ Node = (*cluster.Node)(nil)
