package cluster

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bbolt "go.etcd.io/bbolt"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster/forward"
	"github.com/keyraft/keyraft/cluster/gossip"
	"github.com/keyraft/keyraft/cluster/link"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/bolt"
	"github.com/keyraft/keyraft/plugins/catalog"
	"github.com/keyraft/keyraft/seal"
	"github.com/keyraft/keyraft/store"
)

// Sentinel errors. Each method documents which it returns.
var (
	ErrSealed             = store.ErrSealed
	ErrNotInitialized     = errors.New("cluster: not initialized")
	ErrAlreadyInitialized = errors.New("cluster: already initialized")
	ErrNotLeader          = errors.New("cluster: not the leader")
	ErrNoLeader           = errors.New("cluster: no leader")
	ErrInvalidUnsealKey   = errors.New("cluster: invalid unseal key")
	ErrInvalidRequest     = store.ErrInvalidRequest
	ErrClosed             = errors.New("cluster: node is shut down")
	// ErrNotReady is returned by reads while the node is still applying
	// the Raft log it had when it started (store.ErrNotReady).
	ErrNotReady = store.ErrNotReady
	// ErrOutcomeUnknown is returned by Apply (and everything that commits
	// through it) when a change was handed to a leader that was then lost
	// — its connection died, or it lost leadership, while the change was
	// being committed — and no later leader could say in time whether it
	// committed. The change may have been applied: read the affected
	// record (or the audit log) to find out before retrying; a retry is
	// safe only for an idempotent change. It is a fault the cluster
	// survives (HTTP 503), not an internal error.
	ErrOutcomeUnknown = errors.New("cluster: the leader was lost while committing; the change may have been applied")
)

// Config configures a Node.
type Config struct {
	// NodeID names this node in the Raft configuration.
	NodeID string
	// DataDir holds raft.db (log and stable store), state.db (the state
	// machine) and snapshots/.
	DataDir string
	// BindAddr is the cluster listener (host:port; port 0 picks one).
	BindAddr string
	// AdvertiseAddr is the cluster address peers use; empty means the
	// address BindAddr resolved to.
	AdvertiseAddr string
	// ApplyTimeout bounds one Raft commit.
	ApplyTimeout time.Duration
	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout tune Raft.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// SnapshotInterval and SnapshotThreshold control automatic snapshots;
	// SnapshotRetain is how many snapshot files to keep.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	SnapshotRetain    int
	// ClusterName is reported by seal-status and health.
	ClusterName string
	// AuditCheckpointInterval is how often the leader signs the audit
	// chain head (when it moved); 0 disables checkpoints.
	AuditCheckpointInterval time.Duration
	// APIAddr is the URL of this node's HTTP API, told to other nodes.
	APIAddr string
	// GossipAddr is where gossip (memberlist, UDP and TCP) listens;
	// empty means the cluster port's host and the next port up.
	GossipAddr string
	// GossipAdvertiseAddr is the gossip address told to peers (empty:
	// GossipAddr).
	GossipAdvertiseAddr string
	// Version is reported to peers through gossip.
	Version string
	// LeaderContactLease bounds how long a follower that has heard nothing
	// from the leader keeps serving key use (see CheckLease).
	LeaderContactLease time.Duration
	// Autopilot promotes healthy non-voters and removes dead voters.
	Autopilot AutopilotConfig
	// AutoSeal, when set, opens the node's auto-unseal seal (PKCS#11):
	// the node then unseals itself at start and after a restore, with
	// no shares, retrying with backoff while the seal is unavailable.
	// AutoSealType names it ("pkcs11"). Nil means Shamir.
	AutoSeal     func(ctx context.Context) (seal.Seal, error)
	AutoSealType string
	// MigrateFromShamir (with AutoSeal) or OldAutoSeal (without) configure
	// a seal migration: the node unseals once with the old seal's shares
	// (UnsealMigrate) and moves the root key's wrapping to the new seal.
	MigrateFromShamir bool
	OldAutoSeal       func(ctx context.Context) (seal.Seal, error)
	OldAutoSealType   string
	// TLS, when set, is the operator's own certificate, key and CA for
	// the cluster port, used instead of the ones the cluster CA issues.
	TLS *link.Identity
	// OpenStorage opens the state machine's store at path (a storage
	// plugin). Nil opens plugins/bolt in this process.
	OpenStorage func(path string) (plugins.Storage, error)
	// BuiltinPlugins are this node's built-in plugin catalog entries
	// (see plugins/catalog.ResolveBuiltins).
	BuiltinPlugins []catalog.Entry
	// Logger receives the node's logs (never key material).
	Logger hclog.Logger
}

// DefaultConfig returns the settings for a production node; the caller
// fills in NodeID, DataDir and BindAddr.
func DefaultConfig() Config {
	return Config{
		ApplyTimeout: 10 * time.Second,
		// A LAN cluster: a follower notices a dead leader within 0.4-0.8 s
		// and a new one is elected at once, so writes resume in about 1 s.
		HeartbeatTimeout:        500 * time.Millisecond,
		ElectionTimeout:         500 * time.Millisecond,
		LeaderLeaseTimeout:      250 * time.Millisecond,
		SnapshotInterval:        2 * time.Minute,
		SnapshotThreshold:       8192,
		SnapshotRetain:          3,
		ClusterName:             "keyraft",
		AuditCheckpointInterval: 30 * time.Second,
		LeaderContactLease:      2 * time.Second,
		Autopilot:               DefaultAutopilotConfig(),
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("cluster: node_id is required")
	case c.DataDir == "":
		return errors.New("cluster: data directory is required")
	case c.BindAddr == "":
		return errors.New("cluster: cluster address is required")
	case c.ApplyTimeout <= 0:
		return errors.New("cluster: apply timeout must be positive")
	case c.SnapshotRetain < 1:
		return errors.New("cluster: must retain at least one snapshot")
	case c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return errors.New("cluster: leader lease timeout must not exceed the heartbeat timeout")
	case c.AutoSeal != nil && c.AutoSealType == "":
		return errors.New("cluster: an auto-unseal seal needs its type")
	case c.LeaderContactLease < c.HeartbeatTimeout:
		return errors.New("cluster: leader contact lease must be at least the heartbeat timeout")
	}
	if err := c.Autopilot.Validate(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		return fmt.Errorf("cluster: cluster address %q: %v", c.BindAddr, err)
	}
	return nil
}

// Node is one keyraft server's share of the cluster: the Raft instance,
// the state machine and its store, and the seal state (barrier keyring in
// memory while unsealed).
type Node struct {
	cfg       Config
	dirLock   *os.File // held while the node has DataDir open (lockDataDir)
	access    *access.Service
	plugins   pluginCache
	log       hclog.Logger
	raft      *raft.Raft
	fsm       *fsm.FSM
	state     plugins.Storage
	logs      *logStore
	trans     *raft.NetworkTransport
	snaps     *snapshotStore
	link      *link.ClusterLink
	fwd       *forward.Client
	fwdSrv    *forward.Server
	closed    chan struct{}
	closeOnce sync.Once

	// outcomes, fences and leaderEpoch let a command cut off from its
	// leader be resolved instead of timing out (see forwardApply).
	outcomes    outcomeLog
	fences      fenceSet
	leaderEpoch leaderEpoch
	// forwardHook, when set (tests only), runs in handleForward at each
	// stage of a forwarded command: hookApply before it goes to Raft,
	// hookAnswer after it committed and before the answer is sent. It may
	// block (honouring ctx) to play a leader that froze at that point.
	forwardHook atomic.Pointer[func(ctx context.Context, stage string, req []byte)]

	// member is true once the node belongs to a cluster: it had Raft
	// state at start, bootstrapped, or was admitted by a leader.
	member  atomic.Bool
	applied appliedSignal
	ident   atomic.Pointer[localIdentity]

	joinMu     sync.Mutex
	challenges map[string]*openChallenge // leader: open join challenges

	gossipMu       sync.Mutex
	gossip         *gossip.Gossip
	metaUpdate     chan struct{} // wakes the gossip meta publisher
	identMu        sync.Mutex    // serializes changes of the identity file
	operatorSealed atomic.Bool   // sealed by the operator: no auto-unseal until restart
	rekeyMu        sync.Mutex
	rekey          *rekeyOp   // the rekey in progress on this node
	genRoot        *genRootOp // the root token generation in progress
	autoSeal       autoSealState
	// steppedDown is when this node last stopped being leader (unix nanos).
	steppedDown atomic.Int64
	pilotMu     sync.Mutex
	pilot       autopilotState

	// bootIndex is the last log index present at start; the node serves
	// reads only once it has applied that far (or caught up with the
	// leader's commit index).
	bootIndex uint64
	caughtUp  atomic.Bool

	barrier seal.Barrier
	shares  seal.ShareCollector

	audit *AuditLog

	sealMu sync.Mutex // serializes Seal, the end of Unseal and keyring reloads
	// keyringRev is the revision of the stored keyring the barrier holds,
	// keyringBadRev one that did not open with the root key; both change
	// only under sealMu (see reloadKeyring).
	keyringRev    atomic.Uint64
	keyringBadRev uint64
	keyringKick   chan struct{} // wakes keyringLoop
	rewrapActive  atomic.Bool   // the re-encryption job runs here
	rewrapAfter   atomic.Int64  // unix nanos before which the job does not restart
	rewrapHook    func(try int) // tests: runs before each batch commits
	// rewrapFailures counts the job's failures in a row (only runRewrap,
	// one at a time, touches it).
	rewrapFailures uint

	mu          sync.Mutex
	auditKey    []byte             // audit HMAC key, in memory only while unsealed
	auditHMAC   *audit.HMACKey     // keyed with auditKey, while unsealed
	auditSigner ed25519.PrivateKey // signs audit checkpoints, only while unsealed
	rootKey     []byte             // in memory only while unsealed
	onSeal      []func()           // called after the barrier is sealed
	unsealed    time.Time
	// unsealedRoot is the wrapped root key the node unsealed with; a
	// restore that brings another one seals the node.
	unsealedRoot []byte
	joining      *pendingJoin // between PrepareJoin and the first unseal
}

// writeBehindBytes bounds the applied state waiting for the store.
const writeBehindBytes = 64 << 20

// New opens (or creates) the node's data directory and starts Raft on the
// cluster port. A node with no Raft state belongs to no cluster yet: Init
// makes it the first voter of a new one (Bootstrap), PrepareJoin and an
// unseal admit it to an existing one. The node starts sealed.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: creating data dir: %w", err)
	}
	// Before any file of the directory is opened: a second server on it
	// would otherwise wait for bbolt's lock and fail with a bare timeout.
	dirLock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, dirLock: dirLock, closed: make(chan struct{}), challenges: map[string]*openChallenge{},
		metaUpdate: make(chan struct{}, 1), keyringKick: make(chan struct{}, 1)}
	n.plugins.KeepAbsent = true // a built-in plugin has an entry without a record
	n.access, _ = access.New(access.Config{Store: n, NodeID: cfg.NodeID, Logger: cfg.Logger})
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()
	open := cfg.OpenStorage
	if open == nil {
		open = func(path string) (plugins.Storage, error) { return bolt.Open(path) }
	}
	store, err := open(filepath.Join(cfg.DataDir, "state.db"))
	if err != nil {
		return nil, err
	}
	// Applying an entry must not wait for the store (a plugin round trip
	// and an fsync per audit batch): the Raft log is the durable source,
	// and the store records the applied index with every batch.
	n.state = fsm.WriteBehind(store, writeBehindBytes, func(err error) {
		// Raft has committed what the store could not take; going on
		// would answer from a state this node cannot keep. A restart
		// replays it from the log.
		select {
		case <-n.closed: // shutting down: Close reports it
			n.log.Warn("state store write failed during shutdown; the log replays it at the next start", "error", err)
			return
		default:
		}
		n.log.Error("state store write failed; stopping", "error", err)
		panic(err.Error())
	})
	if n.fsm, err = fsm.New(n.state); err != nil {
		return nil, err
	}
	if n.logs, err = openLogStore(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: 5 * time.Second},
	}); err != nil {
		return nil, fmt.Errorf("cluster: opening raft log: %w", err)
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, n.log.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("cluster: opening snapshot store: %w", err)
	}
	n.snaps = newSnapshotStore(cfg.DataDir, fileSnaps)
	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		if advertise, err = net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr); err != nil {
			return nil, fmt.Errorf("cluster: cluster_addr %q: %w", cfg.AdvertiseAddr, err)
		}
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listening on %s: %w", cfg.BindAddr, err)
	}
	if advertise == nil {
		if ta := ln.Addr().(*net.TCPAddr); ta.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("cluster: cluster address %s listens on every interface: set cluster_addr to the address peers should dial", cfg.BindAddr)
		}
	}
	n.link = link.NewClusterLink(ln, advertise, n.log.Named("cluster-port"))
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: n.link.Layer(link.ProtoRaft), MaxPool: 3, Timeout: 10 * time.Second, Logger: n.log.Named("transport"),
	})
	if cfg.TLS != nil {
		cert, pool, err := cfg.TLS.TLS()
		if err != nil {
			return nil, err
		}
		n.link.SetCredentials(cert, pool)
	}
	id, err := loadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if id != nil {
		n.ident.Store(id)
		if cfg.TLS == nil {
			cert, pool, _ := id.TLS.TLS()
			n.link.SetCredentials(cert, pool)
		}
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = n.log.Named("raft")
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	// Followers learn that an entry committed from the leader's next
	// AppendEntries; when the leader is idle that is CommitTimeout later.
	// A follower that forwarded a write waits for exactly that before it
	// answers, so keep it short (Raft's default is 50 ms).
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	// The state store is durable and knows its applied index; restore a
	// snapshot at start only when the store is behind it (say, lost).
	rc.NoSnapshotRestoreOnStart = true
	snaps, err := n.snaps.List()
	if err != nil {
		// Raft would start after the newest snapshot anyway; without
		// knowing it, entries between the store and it could be skipped.
		return nil, fmt.Errorf("cluster: listing snapshots: %w", err)
	}
	if len(snaps) > 0 && snaps[0].Index > n.fsm.AppliedIndex() {
		rc.NoSnapshotRestoreOnStart = false
	}
	if n.bootIndex, err = lastCommandIndex(n.logs); err != nil {
		return nil, fmt.Errorf("cluster: reading raft log: %w", err)
	}
	hasState, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: reading raft state: %w", err)
	}
	// Entries up to the applied index are replayed without results.
	n.outcomes.init(n.fsm.AppliedIndex() + 1)
	if n.raft, err = raft.NewRaft(rc, signalingFSM{FSM: n.fsm, n: n}, n.logs, n.logs, n.snaps, n.trans); err != nil {
		return nil, fmt.Errorf("cluster: starting raft: %w", err)
	}
	// A node with an identity was initialized or admitted, even if it
	// restarted before any entry reached it.
	n.member.Store(hasState || id != nil)
	n.audit = newAuditLog(n)
	n.fwd = forward.NewClient(func(ctx context.Context, addr string) (net.Conn, error) {
		timeout := 5 * time.Second
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = time.Until(dl)
		}
		return n.link.Dial(link.ProtoForward, addr, timeout)
	}, forward.ClientConfig{})
	n.fwdSrv = forward.NewServer(n.handleForward, forward.ServerConfig{Logger: n.log.Named("forward")})
	go n.fwdSrv.Serve(n.link.Layer(link.ProtoForward).Accept)
	if id != nil {
		if err := n.startGossip(id); err != nil {
			n.raft.Shutdown()
			return nil, err
		}
	}
	if cfg.AuditCheckpointInterval > 0 {
		go n.checkpointLoop(cfg.AuditCheckpointInterval)
	}
	go n.autopilotLoop()
	go n.keyringLoop()
	go n.purgeLoop()
	go n.publishMeta()
	if cfg.AutoSeal != nil {
		go n.autoUnsealLoop()
	}
	n.watchLeadership()
	n.watchLeaderChanges()
	n.link.SetPeerCheck(n.checkPeer)
	ok = true
	return n, nil
}

// CaughtUp reports whether the node has applied the Raft log it had at
// start (or, on a follower, everything the leader has committed), so its
// reads are at least as new as what it acknowledged before a restart.
func (n *Node) CaughtUp() bool {
	if n.caughtUp.Load() {
		return true
	}
	ok := n.fsm.AppliedIndex() >= n.bootIndex
	if !ok && !n.IsLeader() {
		// A tail the node had at start may never commit (a new leader
		// truncates it): caught up is then having applied what the
		// leader committed. Raft's applied index counts no-ops and
		// configuration changes, which never reach the state machine.
		if a, _ := n.raft.LeaderWithID(); a != "" {
			c := n.raft.CommitIndex()
			ok = c > 0 && n.raft.AppliedIndex() >= c
		}
	}
	if ok {
		n.caughtUp.Store(true)
	}
	return ok
}

// lastCommandIndex is the index of the last command entry in the log (0
// when none): the state machine never sees no-ops and configuration
// changes, so that is how far it must get to be where the node was.
func lastCommandIndex(logs raft.LogStore) (uint64, error) {
	first, err := logs.FirstIndex()
	if err != nil {
		return 0, err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return 0, err
	}
	for i := last; i >= first && i > 0; i-- {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue
			}
			return 0, err
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return 0, nil
}

// ClusterAddr is the address Raft listens on.
func (n *Node) ClusterAddr() string { return string(n.trans.LocalAddr()) }

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// IsLeader reports whether this node is the Raft leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's cluster address and ID ("" when unknown).
func (n *Node) Leader() (addr, id string) {
	a, i := n.raft.LeaderWithID()
	return string(a), string(i)
}

// WaitLeader blocks until some node is leader, or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if a, _ := n.raft.LeaderWithID(); a != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-n.closed:
			return ErrClosed
		case <-t.C:
		}
	}
}

// RaftIndexes reports the commit and applied indexes.
func (n *Node) RaftIndexes() (committed, applied uint64) {
	return n.raft.CommitIndex(), n.fsm.AppliedIndex()
}

// Apply commits cmd through Raft (forwarded to the leader from a
// follower) and returns its result once the local state machine has
// applied it. When ctx carries a request's audit event
// (audit.WithEvent) that is not yet in the log, the event rides in the
// same entry and is marked committed on success. It returns ErrNotLeader
// on a follower, an *fsm.ConflictError when a precondition failed,
// ErrClosed after Shutdown, or a Raft error (timeout, lost leadership).
func (n *Node) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	ev := audit.EventFrom(ctx)
	var committed audit.Event
	if ev != nil && ev.Committed() == 0 {
		// The change commits before the response exists: the event says
		// what a committed change answers (200, or the status the caller
		// set beforehand, e.g. 204 for a delete). The request's own event
		// changes only if the entry commits.
		committed = *ev
		committed.Outcome = audit.Allowed
		committed.StateChange = true
		if committed.Node == "" {
			committed.Node = n.cfg.NodeID
		}
		if committed.Time.IsZero() {
			committed.Time = time.Now().UTC()
		}
		if committed.Status == 0 {
			committed.Status = http.StatusOK
		}
		b, err := committed.Encode()
		if err != nil {
			return nil, err
		}
		withEvent := *cmd
		withEvent.Events = append(append([][]byte(nil), cmd.Events...), b)
		cmd = &withEvent
	} else {
		ev = nil
	}
	data, err := cmd.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	eventsOnly := len(cmd.Ops) == 0 && len(cmd.Conds) == 0 && len(cmd.Checkpoint) == 0 && cmd.CompactAuditTo == 0
	res, err := n.commit(ctx, data, eventsOnly)
	if err != nil {
		return nil, err
	}
	if res.Err == nil && ev != nil {
		ev.Outcome, ev.Status, ev.StateChange = committed.Outcome, committed.Status, true
		ev.MarkCommitted(res.LastSeq)
	}
	return res, res.Err
}

// Snapshot asks Raft for a snapshot now (used by tests and operators).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Shutdown seals the node, stops Raft and closes the stores.
func (n *Node) Shutdown() error {
	first := false
	n.closeOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	n.sealInternal()
	close(n.closed)
	n.stopGossip()
	n.fwd.Close()
	n.fwdSrv.Close()
	n.closeAutoSeal()
	if a, ok := n.state.(plugins.Aborter); ok {
		// A storage plugin that stays down must not hold Raft's
		// shutdown (it waits for the entry being applied) forever.
		a.Abort()
	}
	err := n.raft.Shutdown().Error()
	n.closeStores()
	return err
}

func (n *Node) closeStores() {
	if n.trans != nil {
		n.trans.Close()
	}
	if n.logs != nil {
		n.logs.Close()
	}
	if n.state != nil {
		n.state.Close()
	}
	n.dirLock.Close() // last: the directory is free once its files are closed
}

// Peer is one server of the Raft configuration.
type Peer struct {
	ID      string
	Address string
	Voter   bool
	Leader  bool
}

// Peers returns the current Raft configuration.
func (n *Node) Peers() ([]Peer, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	leaderAddr, leaderID := n.raft.LeaderWithID()
	var out []Peer
	for _, s := range f.Configuration().Servers {
		out = append(out, Peer{
			ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter,
			Leader: s.ID == leaderID && s.Address == leaderAddr,
		})
	}
	return out, nil
}

// SaveSnapshot writes a snapshot of the whole state to w, as the raw
// state-machine stream (OpenSnapshot): barrier ciphertext and the sealed
// root of trust only, like everything the node stores.
func (n *Node) SaveSnapshot(w io.Writer) error {
	_, rc, err := n.OpenSnapshot()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// OpenSnapshot opens a snapshot of the whole state: its Raft meta (Size
// is the stream's length, known before it is read) and the raw
// state-machine stream. It takes a fresh Raft snapshot, or uses the
// newest one when nothing changed since. The caller closes the reader.
func (n *Node) OpenSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error) {
	var (
		meta *raft.SnapshotMeta
		rc   io.ReadCloser
	)
	f := n.raft.Snapshot()
	err := f.Error()
	switch {
	case err == nil:
		meta, rc, err = f.Open()
	case errors.Is(err, raft.ErrNothingNewToSnapshot):
		var list []*raft.SnapshotMeta
		if list, err = n.snaps.List(); err == nil && len(list) == 0 {
			err = errors.New("cluster: no snapshot yet")
		}
		if err == nil {
			meta, rc, err = n.snaps.Open(list[0].ID)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: taking a snapshot: %w", err)
	}
	return meta, rc, nil
}

// snapshotSumsAAD is the associated data of a snapshot archive's sealed
// checksums (snapfile's SHA256SUMS.sealed). It starts with a NUL, which
// no record key may (fsm refuses such keys) and no other associated data
// of the barrier does, so no barrier value of the state or of a join
// challenge can pass for sealed checksums, nor the other way round.
const snapshotSumsAAD = "\x00keyraft/snapshot-sums/v1"

// SealSnapshotSums seals a snapshot archive's checksums with the barrier
// keyring, so that a restore without force can tell that the archive was
// made by this cluster and not altered. It returns ErrSealed while
// sealed.
func (n *Node) SealSnapshotSums(sums []byte) ([]byte, error) {
	return n.barrier.Encrypt([]byte(snapshotSumsAAD), sums)
}

// OpenSnapshotSums opens what SealSnapshotSums made with this cluster's
// keyring (any term: terms are never dropped, so archives stay
// verifiable across rotations and rekeys). It returns ErrSealed while
// sealed and an error wrapping seal.ErrDecrypt for sums sealed by
// another keyring, or altered.
func (n *Node) OpenSnapshotSums(sealed []byte) ([]byte, error) {
	return n.barrier.Decrypt([]byte(snapshotSumsAAD), sealed)
}

// SnapshotClusterID reads the cluster ID recorded in a saved snapshot's
// seal configuration (stored in the clear), or "" when it has none.
func SnapshotClusterID(r io.Reader) (string, error) {
	var id string
	_, err := fsm.ParseSnapshotRecords(r, func(k, v []byte) {
		if string(k) == fsm.RecordSealConfig && len(v) > 8 {
			var c SealConfig
			if json.Unmarshal(v[8:], &c) == nil {
				id = c.ClusterID
			}
		}
	})
	return id, err
}

// RestoreSnapshot replaces the whole cluster state with a saved snapshot
// (leader only). The file is checked completely before Raft sees it. The
// restore brings the snapshot's root of trust with it, so the node seals
// itself: unseal it with the shares of the cluster the snapshot came
// from. It returns the audit head from before the restore, so the caller
// can record what was replaced. It returns ErrNotLeader on a follower and
// ErrInvalidRequest for a file that is not a keyraft snapshot.
func (n *Node) RestoreSnapshot(ctx context.Context, file *os.File) (fsm.AuditHead, error) {
	prev := n.fsm.AuditHead()
	if !n.IsLeader() {
		return prev, ErrNotLeader
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return prev, err
	}
	applied, err := fsm.ValidateSnapshot(file)
	if err != nil {
		return prev, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	size, err := file.Seek(0, io.SeekEnd)
	if err != nil {
		return prev, err
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return prev, err
	}
	// Index = the snapshot's own applied index: Raft places the restore
	// after both it and the current log, so every later entry has a higher
	// index than any the restored state says it applied.
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: applied, Size: size}
	if err := n.raft.Restore(meta, file, n.cfg.ApplyTimeout); err != nil {
		return prev, fmt.Errorf("cluster: restoring snapshot: %w", err)
	}
	n.sealInternal()
	n.log.Warn("state replaced from a snapshot; sealed until unsealed with the snapshot's shares",
		"previous_audit_seq", prev.Seq, "restored_audit_seq", n.fsm.AuditHead().Seq)
	return prev, nil
}
