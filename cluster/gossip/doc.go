// Package gossip is how a keyraft node finds its peers and notices when one
// fails: encrypted membership and failure detection built on
// hashicorp/memberlist (SWIM with the Lifeguard extensions).
//
// Gossip is advisory. It tells a node who is out there, at which API and
// cluster addresses, whether they are sealed and which version they run,
// and which of them stopped answering. It decides nothing: who votes in
// Raft is still the Raft configuration, and who may join the cluster is
// still decided by the join protocol and the cluster CA.
//
// # Starting a node
//
//	cfg := gossip.DefaultConfig()
//	cfg.NodeID = "node-1"
//	cfg.BindAddr = "10.0.0.1:8301"
//	cfg.Key = gossipKey // 32 bytes, the same on every node
//	cfg.Logger = logger
//	cfg.OnChange = func() { refreshPeers() }
//	g, err := gossip.Start(cfg, gossip.Meta{
//		NodeID:      "node-1",
//		APIAddr:     "https://10.0.0.1:8200",
//		ClusterAddr: "10.0.0.1:8201",
//		Sealed:      true,
//		Version:     version,
//	})
//	...
//	n, err := g.Join([]string{"10.0.0.2:8301", "10.0.0.3:8301"})
//
// Join needs only one answering peer: memberlist then exchanges full state
// and the rest of the cluster learns about the new node by gossip. A node
// that is alone (the first one, or one whose peers are all down) simply
// runs alone and can Join later. Members lists everyone this node knows
// about, itself included; Member looks one up; OnChange says when to look.
// SetMeta changes what this node advertises (for example Sealed after an
// unseal) and gossips the change.
//
// # The gossip key
//
// Every packet and every state-sync stream is encrypted and authenticated
// with AES-256-GCM under Config.Key, through memberlist's keyring, and
// incoming and outgoing verification are both on. A node without the key
// can neither join nor inject messages: its packets fail authentication and
// are dropped (memberlist logs them as errors), and it cannot read the
// cluster's. The caller creates the key when the cluster is initialized
// (32 bytes from crypto/rand) and must hand it to joining nodes over an
// authenticated, encrypted channel; this package neither creates nor stores
// it. Everyone who
// has the key can read all members' Meta, which therefore holds no secrets,
// and can impersonate a member in gossip, which is one reason gossip stays
// advisory. Key rotation (memberlist supports several keys in a keyring) is
// not offered yet.
//
// # Metadata
//
// Meta travels as compact JSON inside memberlist's node metadata, which is
// limited to MaxMetaSize (512) bytes; Encode refuses a Meta that would not
// fit, so the limit can never be hit at run time. DecodeMeta is strict: it
// rejects unknown fields, trailing data, invalid UTF-8 and control
// characters. A peer whose metadata does not decode, or whose Meta.NodeID
// is not its gossip node name, is refused as a member (memberlist's alive
// delegate), so every member in the table has a well-formed Meta.
//
// The strictness makes Meta's field set part of the wire protocol: a node
// refuses peers whose Meta has a field it does not know. Adding a field
// therefore needs a release that accepts it before any node sends it.
//
// # States
//
// Each member is Alive, Dead ("failed") or Left, with the local time at
// which this node saw it enter that state (Member.Since):
//
//   - Alive: joined, or answered probes, or came back.
//   - Dead: stopped answering probes (crash, kill, network partition,
//     Shutdown without Leave) and did not refute the suspicion in time.
//   - Left: announced its departure with Leave, and then left or stopped.
//
// Memberlist itself forgets dead members after a while; this package keeps
// them, with their last Meta, until Forget (for example when the node is
// removed from the cluster) or until they come back. Suspect, memberlist's
// short intermediate state, is defined but not reported: memberlist v0.7.0
// has no event for it, so members go from Alive to Dead when suspicion
// expires (about 500ms with the defaults).
//
// A failed node that restarts under the same NodeID comes back as Alive,
// also on a new address: memberlist lets a node reclaim the name of a dead
// node once the peer has seen it dead for DeadNodeReclaimTime, set here to
// 1s. A node that restarts sooner (before its peers noticed the failure, or
// within that second) is refused as a conflicting address until then, and
// is let in by its next Join or by the next full state sync (every 10s).
//
// # Timing
//
// DefaultConfig is tuned for a LAN of a handful of nodes: a node that stops
// answering is seen as Dead within about 2 s, typically 0.9–1.2 s on
// loopback (see DefaultConfig for the arithmetic). A node that is merely
// slow, for example in a long GC pause, may be suspected; it refutes as
// soon as it hears of it, and if it was already declared Dead it shows up
// as Alive again. Memberlist's Lifeguard awareness also slows a node's own
// probing while it is itself unhealthy, so an overloaded node does not
// accuse healthy ones. For links slower than a LAN, raise ProbeInterval,
// ProbeTimeout and SuspicionMult together.
//
// # Leaving and shutting down
//
// Leave(timeout) tells every live peer directly that this node is leaving,
// then broadcasts memberlist's leave message and waits until it has reached
// a peer; Shutdown then closes the sockets. The direct notice is needed
// because memberlist v0.7.0 reports a leave to the other nodes' event
// delegates exactly like a failure (it does not fill in Node.State); a peer
// that misses the notice (partitioned at that moment) records Dead instead
// of Left. Shutdown alone is a crash as far as the others are concerned.
// After Leave, Join and SetMeta return ErrLeft; after Shutdown, everything
// but Members, Member, Addr and Forget returns ErrClosed (Shutdown itself
// returns nil again).
//
// # Logging and concurrency
//
// Memberlist's log lines go to Config.Logger (named "memberlist"), at the
// level memberlist gives them ([DEBUG], [INFO], [WARN], [ERR]); a nil
// Logger discards them. All methods are safe for concurrent use. OnChange
// runs on its own goroutine, one call at a time, never under a lock, with
// bursts of changes coalesced; it may call any method but Shutdown. Its
// first call reports this node itself and can come as soon as Start has
// returned.
package gossip
