package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/cluster/link"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/seal"
)

// challengeAAD prefixes the node ID in a join challenge's associated
// data, so an answer for one node cannot admit another. It is not a
// record: nothing is stored under it (see fsm.Records).
const challengeAAD = "core/join-challenge/"

// Join errors. Each method documents which it returns.
var (
	// ErrJoinDenied: the answer to the join challenge was wrong — the
	// joining node does not hold this cluster's unseal material.
	ErrJoinDenied = errors.New("cluster: join refused: the answer to the challenge is wrong")
	// ErrJoinExpired: there is no open challenge for the node (it expired,
	// was already used, or was issued by a previous leader).
	ErrJoinExpired = errors.New("cluster: join refused: no open challenge for this node (expired or already used); ask for a new one")
	// ErrNodeExists: the node ID (or cluster address) is already in the
	// Raft configuration.
	ErrNodeExists = errors.New("cluster: a server with this node ID is already a member")
	// ErrAlreadyMember: this node already belongs to a cluster (it has
	// Raft state), so it cannot join another one.
	ErrAlreadyMember = errors.New("cluster: this node already has Raft state")
	// ErrLastVoter: removing the server would leave no voter.
	ErrLastVoter = errors.New("cluster: refusing to remove the last voter")
	// ErrUnknownPeer: no server with that ID is in the configuration.
	ErrUnknownPeer = errors.New("cluster: no such server in the Raft configuration")
)

const (
	challengeTTL       = 5 * time.Minute
	maxOpenChallenges  = 64
	nodeCertLifetime   = 5 * 365 * 24 * time.Hour
	joinCatchUpTimeout = 2 * time.Minute
)

// JoinChallenge is what the leader hands a node that asks to join: the
// sealed root of trust (ciphertext, as every node stores it) and a nonce
// encrypted under the barrier keyring. Only a node that can unseal — that
// holds the unseal material — can read the nonce.
type JoinChallenge struct {
	NodeID string `json:"server_id"`
	// ID names this challenge; the answer quotes it. Random, so nobody
	// else can answer (or burn) a challenge they did not ask for.
	ID         string `json:"challenge_id"`
	SealConfig []byte `json:"seal_config"`
	// RootKeys are the root key as each seal wraps it ("shamir",
	// "pkcs11"), so a node can join with whichever seal it has.
	RootKeys  map[string][]byte `json:"root_keys"`
	Keyring   []byte            `json:"keyring"`
	Challenge []byte            `json:"challenge"`
}

// JoinAnswer is the joining node's proof and request.
type JoinAnswer struct {
	NodeID      string `json:"server_id"`
	ChallengeID string `json:"challenge_id"`
	ClusterAddr string `json:"cluster_addr"`
	APIAddr     string `json:"api_addr,omitempty"`
	GossipAddr  string `json:"gossip_addr,omitempty"`
	// Answer is HMAC-SHA256 keyed by the challenge's nonce over the node
	// ID, cluster address and CSR: proof of the unseal material, bound to
	// what the node asks for (an on-path attacker cannot swap the CSR).
	Answer []byte `json:"answer"`
	CSR    []byte `json:"csr"`
}

// joinProof computes the answer to a challenge for a request.
func joinProof(nonce []byte, nodeID, clusterAddr string, csr []byte) []byte {
	m := hmac.New(sha256.New, nonce)
	for _, part := range [][]byte{[]byte(nodeID), []byte(clusterAddr), csr} {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(part)))
		m.Write(l[:])
		m.Write(part)
	}
	return m.Sum(nil)
}

// JoinGrant admits a node: its signed certificate, the CA, the gossip key
// and where to gossip, and the Raft index the node must reach before it
// unseals.
type JoinGrant struct {
	CertPEM     []byte   `json:"cert"`
	CAPEM       []byte   `json:"ca"`
	GossipKey   []byte   `json:"gossip_key"`
	GossipPeers []string `json:"gossip_peers"`
	Index       uint64   `json:"index"`
}

type openChallenge struct {
	nodeID  string
	nonce   []byte
	expires time.Time
	// grant is kept after a right answer, so a joiner whose answer got
	// lost on the way back can ask again and get the same grant.
	grant *JoinGrant
	proof []byte
}

// pendingJoin is a joining node's state between the challenge and the
// grant: it unseals with the challenge's root of trust.
type pendingJoin struct {
	ch     *JoinChallenge
	config SealConfig
	keyPEM []byte
	csrPEM []byte
	send   func(context.Context, JoinAnswer) (*JoinGrant, error)
}

// ValidNodeID reports whether id can name a node: 1-64 characters of
// letters, digits, '.', '_' and '-'.
func ValidNodeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Bootstrap makes this node the first voter of a new cluster, if it has no
// Raft state yet, and waits until it leads. Init calls it; nodes that join
// never bootstrap. It returns ErrClosed, or ctx's error wrapped in
// ErrNoLeader.
func (n *Node) Bootstrap(ctx context.Context) error {
	if n.isMember() {
		return n.WaitLeader(ctx)
	}
	n.mu.Lock()
	joining := n.joining != nil
	n.mu.Unlock()
	if joining {
		return fmt.Errorf("%w: this node is joining a cluster", ErrInvalidRequest)
	}
	boot := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.NodeID), Address: n.trans.LocalAddr(),
	}}}
	if err := n.raft.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("cluster: bootstrapping: %w", err)
	}
	n.member.Store(true)
	n.log.Info("bootstrapped a new cluster", "node_id", n.cfg.NodeID)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !n.IsLeader() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-n.closed:
			return ErrClosed
		case <-t.C:
		}
	}
	n.audit.flushHeld()
	return nil
}

// isMember reports whether the node belongs to a cluster (bootstrapped,
// joined, or restarted with Raft state).
func (n *Node) isMember() bool { return n.member.Load() }

// IsMember reports whether the node belongs to a cluster: it was
// initialized, admitted by a leader, or restarted with Raft state.
func (n *Node) IsMember() bool { return n.member.Load() }

// JoinChallenge opens a challenge for a node that asks to join (leader
// only, unsealed). It returns ErrNotLeader, ErrSealed, ErrInvalidRequest
// for a bad node ID or too many open challenges, or ErrNodeExists.
func (n *Node) JoinChallenge(ctx context.Context, nodeID string) (*JoinChallenge, error) {
	if !ValidNodeID(nodeID) {
		return nil, fmt.Errorf("%w: server_id must be 1-64 letters, digits, '.', '_' or '-'", ErrInvalidRequest)
	}
	if !n.IsLeader() {
		return nil, ErrNotLeader
	}
	if n.barrier.Sealed() {
		return nil, ErrSealed
	}
	if err := n.checkNewServer(nodeID, ""); err != nil {
		return nil, err
	}
	cfgJSON, _, err := n.fsm.Get(fsm.RecordSealConfig)
	if err != nil {
		return nil, err
	}
	rootKeys := map[string][]byte{}
	for _, t := range sealTypes {
		blob, _, err := n.fsm.Get(rootKeyRecord(t))
		if err != nil {
			return nil, err
		}
		if blob != nil {
			rootKeys[t] = blob
		}
	}
	keyringBlob, _, err := n.fsm.Get(fsm.RecordKeyring)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ct, err := n.barrier.Encrypt([]byte(challengeAAD+nodeID), nonce)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	cid, err := randomID()
	if err != nil {
		return nil, err
	}
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	var oldest string
	for id, c := range n.challenges {
		if now.After(c.expires) {
			delete(n.challenges, id)
		} else if oldest == "" || c.expires.Before(n.challenges[oldest].expires) {
			oldest = id
		}
	}
	if len(n.challenges) >= maxOpenChallenges {
		// Full (a flood of requests): the oldest open challenge goes.
		delete(n.challenges, oldest)
	}
	n.challenges[cid] = &openChallenge{nodeID: nodeID, nonce: nonce, expires: now.Add(challengeTTL)}
	return &JoinChallenge{NodeID: nodeID, ID: cid, SealConfig: cfgJSON, RootKeys: rootKeys, Keyring: keyringBlob, Challenge: ct}, nil
}

// checkNewServer refuses a node ID or cluster address already in the
// Raft configuration.
func (n *Node) checkNewServer(nodeID, addr string) error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == nodeID {
			return fmt.Errorf("%w: %q (remove it first with 'keyraft operator raft remove-peer %s')", ErrNodeExists, nodeID, nodeID)
		}
		if addr != "" && string(s.Address) == addr {
			return fmt.Errorf("%w: cluster address %s is already used by %q", ErrNodeExists, addr, s.ID)
		}
	}
	return nil
}

// AdmitNode checks a joining node's answer and, when it is right, signs
// its certificate and adds it as a non-voter (autopilot promotes it once
// it is healthy). Each challenge can be answered once. It returns
// ErrNotLeader, ErrSealed, ErrJoinExpired, ErrJoinDenied, ErrNodeExists,
// or ErrInvalidRequest for a malformed answer.
func (n *Node) AdmitNode(ctx context.Context, a JoinAnswer) (*JoinGrant, error) {
	if !ValidNodeID(a.NodeID) {
		return nil, fmt.Errorf("%w: server_id must be 1-64 letters, digits, '.', '_' or '-'", ErrInvalidRequest)
	}
	if _, _, err := net.SplitHostPort(a.ClusterAddr); err != nil {
		return nil, fmt.Errorf("%w: cluster_addr %q is not host:port", ErrInvalidRequest, a.ClusterAddr)
	}
	if !n.IsLeader() {
		return nil, ErrNotLeader
	}
	if n.barrier.Sealed() {
		return nil, ErrSealed
	}
	n.joinMu.Lock()
	defer n.joinMu.Unlock() // one admission at a time
	c := n.challenges[a.ChallengeID]
	if c == nil || c.nodeID != a.NodeID || time.Now().After(c.expires) {
		return nil, ErrJoinExpired
	}
	proof := joinProof(c.nonce, a.NodeID, a.ClusterAddr, a.CSR)
	if subtle.ConstantTimeCompare(proof, a.Answer) != 1 {
		delete(n.challenges, a.ChallengeID) // a wrong answer spends it
		n.log.Warn("join refused: wrong answer to the challenge", "server_id", a.NodeID)
		return nil, ErrJoinDenied
	}
	if c.grant != nil {
		return c.grant, nil // the same request again: its answer was lost
	}
	if err := n.checkNewServer(a.NodeID, a.ClusterAddr); err != nil {
		return nil, err
	}
	ca, err := n.clusterCA()
	if err != nil {
		return nil, err
	}
	certPEM, err := ca.SignCSR(a.CSR, a.NodeID, time.Now(), nodeCertLifetime)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	// The gossip key the pool uses: this node's (the state's may be
	// another cluster's after a restore).
	var gossipKey []byte
	if id := n.ident.Load(); id != nil {
		gossipKey = id.GossipKey
	} else if gossipKey, _, err = n.Read(fsm.RecordGossipKey); err != nil {
		return nil, err
	}
	if err := n.raft.AddNonvoter(raft.ServerID(a.NodeID), raft.ServerAddress(a.ClusterAddr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return nil, fmt.Errorf("cluster: adding %s: %w", a.NodeID, err)
	}
	n.log.Info("admitted a node as non-voter", "server_id", a.NodeID, "cluster_addr", a.ClusterAddr)
	// The new node trusts the CA in the state and every CA this node
	// trusts (they differ after a restore from another cluster).
	caBundle := ca.CertPEM
	if id := n.ident.Load(); id != nil {
		caBundle = mergePEM(caBundle, id.TLS.CAPEM)
	}
	// Index: the last command this node applied; the joiner's state
	// machine must get there (the configuration change itself is never
	// applied by a state machine).
	c.grant = &JoinGrant{CertPEM: certPEM, CAPEM: caBundle, GossipKey: gossipKey,
		GossipPeers: n.gossipPeers(), Index: n.fsm.AppliedIndex()}
	return c.grant, nil
}

func (n *Node) clusterCA() (*link.ClusterCA, error) {
	certPEM, _, err := n.Read(fsm.RecordClusterCACert)
	if err != nil {
		return nil, err
	}
	keyDER, _, err := n.Read(fsm.RecordClusterCAKey)
	if err != nil {
		return nil, err
	}
	defer clear(keyDER)
	if certPEM == nil || keyDER == nil {
		return nil, errors.New("cluster: this cluster has no CA (initialized by an older version)")
	}
	return link.ParseClusterCA(certPEM, keyDER)
}

// PrepareJoin starts joining the cluster that issued ch: the node reports
// the cluster's seal configuration and waits for the unseal shares. When
// Unseal reaches the threshold, the node answers the challenge through
// send, installs the certificate it is granted, catches up and unseals.
// It returns ErrAlreadyMember for a node with Raft state, or
// ErrInvalidRequest for a challenge that does not parse. A new challenge
// replaces a pending one (and the shares given so far).
func (n *Node) PrepareJoin(ch *JoinChallenge, send func(context.Context, JoinAnswer) (*JoinGrant, error)) error {
	if n.isMember() {
		return ErrAlreadyMember
	}
	var cfg SealConfig
	if err := json.Unmarshal(ch.SealConfig, &cfg); err != nil || cfg.Threshold < 1 || cfg.Shares < cfg.Threshold || cfg.Shares > 255 {
		return fmt.Errorf("%w: the leader sent an unusable seal configuration", ErrInvalidRequest)
	}
	if len(ch.RootKeys) == 0 || len(ch.Keyring) == 0 || len(ch.Challenge) == 0 {
		return fmt.Errorf("%w: the leader sent an incomplete challenge", ErrInvalidRequest)
	}
	if n.cfg.AutoSeal != nil && len(ch.RootKeys[n.cfg.AutoSealType]) == 0 {
		return fmt.Errorf("%w: this node unseals with a %s seal, but the cluster's root key is not wrapped by one (migrate the cluster's seal first)", ErrInvalidRequest, n.cfg.AutoSealType)
	}
	keyPEM, csrPEM, err := link.NewNodeKey(n.cfg.NodeID)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.joining = &pendingJoin{ch: ch, config: cfg, keyPEM: keyPEM, csrPEM: csrPEM, send: send}
	n.shares.Reset()
	n.log.Info("joining a cluster: waiting for the unseal keys", "cluster_id", cfg.ClusterID)
	return nil
}

// Joining reports whether the node is between PrepareJoin and its first
// unseal.
func (n *Node) Joining() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.joining != nil
}

// completeJoin runs when a joining node has the unseal key: it proves it
// to the leader, installs the grant, catches up and unseals.
func (n *Node) completeJoin(ctx context.Context, j *pendingJoin, s seal.Seal) error {
	rootKey, err := s.Unwrap(ctx, j.ch.RootKeys[s.Type()])
	if err != nil {
		if s.Type() == "shamir" {
			return fmt.Errorf("%w: the shares do not form the unseal key", ErrInvalidUnsealKey)
		}
		return fmt.Errorf("%w: the %s seal cannot unwrap the cluster's root key: %v", ErrSealUnavailable, s.Type(), err)
	}
	kr, err := seal.UnwrapKeyring(rootKey, j.ch.Keyring)
	clear(rootKey)
	if err != nil {
		return fmt.Errorf("cluster: the leader's keyring does not open with this root key: %w", err)
	}
	nonce, err := kr.Decrypt([]byte(challengeAAD+n.cfg.NodeID), j.ch.Challenge)
	kr.Zero()
	if err != nil {
		return fmt.Errorf("%w: the challenge was not made for node %q", ErrInvalidRequest, n.cfg.NodeID)
	}
	clusterAddr := n.ClusterAddr()
	grant, err := j.send(ctx, JoinAnswer{
		NodeID: n.cfg.NodeID, ChallengeID: j.ch.ID, ClusterAddr: clusterAddr, APIAddr: n.cfg.APIAddr,
		GossipAddr: n.gossipAddr(), Answer: joinProof(nonce, n.cfg.NodeID, clusterAddr, j.csrPEM), CSR: j.csrPEM,
	})
	clear(nonce)
	if err != nil {
		// Whatever went wrong (refused, expired, the leader changed or
		// could not be reached), this challenge is of no more use: the
		// node stops joining, and retry_join or another join starts over.
		n.mu.Lock()
		if n.joining == j {
			n.joining = nil
		}
		n.mu.Unlock()
		return fmt.Errorf("%w (join again for a new challenge)", err)
	}
	id := &localIdentity{TLS: link.Identity{CertPEM: grant.CertPEM, KeyPEM: j.keyPEM, CAPEM: grant.CAPEM},
		GossipKey: grant.GossipKey, GossipPeers: grant.GossipPeers}
	if err := n.installIdentity(id); err != nil {
		return err
	}
	n.member.Store(true)
	n.mu.Lock()
	n.joining = nil
	n.mu.Unlock()
	n.log.Info("joined the cluster; catching up", "index", grant.Index)
	wctx, cancel := context.WithTimeout(ctx, joinCatchUpTimeout)
	defer cancel()
	if err := n.waitApplied(wctx, grant.Index); err != nil {
		return fmt.Errorf("cluster: joined, but catching up with the leader failed (unseal again to retry): %w", err)
	}
	n.audit.flushHeld()
	return n.unsealWithSeal(ctx, s)
}

// installIdentity validates and saves the node's identity, hands the
// certificate to the cluster port and starts gossip.
func (n *Node) installIdentity(id *localIdentity) error {
	n.identMu.Lock()
	defer n.identMu.Unlock()
	cert, pool, err := id.TLS.TLS()
	if err != nil {
		return err
	}
	if err := saveIdentity(n.cfg.DataDir, id); err != nil {
		return fmt.Errorf("cluster: saving the node identity: %w", err)
	}
	if n.cfg.TLS == nil {
		n.link.SetCredentials(cert, pool)
	}
	n.ident.Store(id)
	return n.startGossip(id)
}

// RemovePeer removes a server from the Raft configuration (forwarded to
// the leader from a follower). It returns ErrUnknownPeer, ErrLastVoter,
// ErrNotLeader when no leader can be reached, or a Raft error.
func (n *Node) RemovePeer(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	if !n.IsLeader() {
		_, err := n.forwardCall(ctx, append([]byte{fwdRemovePeer}, id...))
		return err
	}
	return n.removePeer(id)
}

func (n *Node) removePeer(id string) error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	found, voters := false, 0
	var isVoter bool
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if string(s.ID) == id {
			found, isVoter = true, s.Suffrage == raft.Voter
		}
	}
	if !found {
		return fmt.Errorf("%w: %q", ErrUnknownPeer, id)
	}
	if isVoter && voters <= 1 {
		return ErrLastVoter
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("cluster: removing %s: %w", id, err)
	}
	n.forgetMember(id)
	n.log.Info("removed a server from the cluster", "server_id", id)
	return nil
}

// initPKI makes the records init adds for the cluster: the CA (key
// barrier-encrypted) and the gossip key, encrypted under kr.
func initPKI(kr *seal.Keyring, clusterID string) (ops []fsm.Op, ca *link.ClusterCA, gossipKey []byte, err error) {
	ca, err = link.NewClusterCA(clusterID, time.Now())
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := ca.KeyDER()
	if err != nil {
		return nil, nil, nil, err
	}
	defer clear(keyDER)
	gossipKey = make([]byte, 32)
	if _, err := rand.Read(gossipKey); err != nil {
		return nil, nil, nil, err
	}
	for _, r := range []struct {
		key string
		val []byte
	}{{fsm.RecordClusterCACert, ca.CertPEM}, {fsm.RecordClusterCAKey, keyDER}, {fsm.RecordGossipKey, gossipKey}} {
		ct, err := kr.Encrypt([]byte(r.key), r.val)
		if err != nil {
			return nil, nil, nil, err
		}
		ops = append(ops, fsm.Op{Kind: fsm.OpPut, Key: r.key, Value: ct})
	}
	return ops, ca, gossipKey, nil
}

// trustStateCA adds the CA in the replicated state to the CAs this node
// trusts, when they differ: after a snapshot from another cluster is
// restored, nodes keep their certificates (so they still reach each
// other), and also accept nodes that join later with a certificate of
// the restored CA.
func (n *Node) trustStateCA() {
	n.identMu.Lock()
	defer n.identMu.Unlock()
	id := n.ident.Load()
	if id == nil {
		return
	}
	certPEM, _, err := n.Read(fsm.RecordClusterCACert)
	if err != nil || certPEM == nil {
		return
	}
	merged := mergePEM(id.TLS.CAPEM, certPEM)
	if bytes.Equal(merged, id.TLS.CAPEM) {
		return
	}
	next := *id
	next.TLS.CAPEM = merged
	cert, pool, err := next.TLS.TLS()
	if err != nil {
		n.log.Warn("could not trust the cluster CA of the restored state", "error", err)
		return
	}
	if err := saveIdentity(n.cfg.DataDir, &next); err != nil {
		n.log.Warn("could not save the node identity", "error", err)
		return
	}
	n.ident.Store(&next)
	if n.cfg.TLS == nil {
		n.link.SetCredentials(cert, pool)
	}
	n.log.Info("now also trusting the cluster CA of the restored state")
}

// mergePEM returns the PEM blocks of a, then those of b that a lacks,
// each re-encoded (so equal blocks compare equal).
func mergePEM(a, b []byte) []byte {
	var out []byte
	for _, in := range [][]byte{a, b} {
		for rest := in; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if enc := pem.EncodeToMemory(blk); !bytes.Contains(out, enc) {
				out = append(out, enc...)
			}
		}
	}
	return out
}
