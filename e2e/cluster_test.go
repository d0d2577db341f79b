package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// e2eCluster is a keyraft cluster of real processes configured from HCL
// files: node 1 is initialized, the others join by retry_join and are
// unsealed with the same shares.
type e2eCluster struct {
	t      *testing.T
	nodes  []*node
	shares []string
	root   string
	faults *faultNet // nil unless the cluster runs behind fault proxies
	opts   clusterOpts
}

type clusterOpts struct {
	size    int
	proxies bool // put a fault proxy in front of each cluster port
	// pluginDirs gives every node a plugin_directory (node.pluginDir).
	pluginDirs bool
	// env is more environment for every node's process.
	env []string
	// flags are more server flags for every node (-unsafe-test-settings).
	flags []string
}

const autopilotHCL = `
  autopilot {
    server_stabilization_time          = "1s"
    dead_server_last_contact_threshold = "1h"
  }`

func startCluster(t *testing.T, o clusterOpts) *e2eCluster {
	t.Helper()
	c := &e2eCluster{t: t, opts: o}
	if o.proxies {
		c.faults = newFaultNet()
	}
	for i := 1; i <= o.size; i++ {
		storage := autopilotHCL
		if i > 1 {
			storage += fmt.Sprintf("\n  retry_join {\n    leader_api_addr = %q\n  }", c.nodes[0].addr)
		}
		n := c.newNode(fmt.Sprintf("n%d", i), i, storage)
		n.start()
		if i == 1 {
			c.shares, _, c.root = n.initNode(3, 2)
		}
		c.unsealJoining(n)
		c.nodes = append(c.nodes, n)
	}
	c.waitVoters(o.size)
	return c
}

// newNode prepares (does not start) a cluster node. Behind proxies each
// node binds its cluster and gossip ports on its own IP 127.0.0.(10+i).
func (c *e2eCluster) newNode(id string, i int, storage string) *node {
	n := newConfigNodeWith(c.t, storage)
	n.nodeID = id
	n.env = append(n.env, c.opts.env...)
	n.extra = append(n.extra, c.opts.flags...)
	if c.opts.pluginDirs {
		n.pluginDir = filepath.Join(n.dir, "plugins")
		if err := os.MkdirAll(n.pluginDir, 0o755); err != nil {
			c.t.Fatal(err)
		}
		n.topHCL += fmt.Sprintf("plugin_directory = %q\n", n.pluginDir)
	}
	if c.faults != nil {
		n.bindIP = fmt.Sprintf("127.0.0.%d", 10+i)
		p := c.faults.proxy(c.t, n.bindIP, fmt.Sprintf("%s:%d", n.bindIP, n.clusterPort))
		n.clusterAdvertise = p.addr()
	}
	n.writeNodeConfig()
	return n
}

// unsealJoining unseals a node; a joining node first has to receive its
// challenge (seal-status then shows the cluster's threshold).
func (c *e2eCluster) unsealJoining(n *node) {
	c.t.Helper()
	cl := n.client("")
	testwait.Within(c.t, leaderWait, n.nodeID+" to know the cluster's seal configuration", func() bool {
		st, err := cl.Sys().SealStatus()
		return err == nil && st.Initialized && st.T == 2
	})

	n.unseal(c.shares[0], c.shares[1])
}

func (c *e2eCluster) leader() *node {
	c.t.Helper()
	var l *node
	testwait.Within(c.t, leaderWait, "a leader", func() bool {
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			if st, err := n.client("").Sys().Leader(); err == nil && st.IsSelf {
				l = n
				return true
			}
		}
		return false
	})

	return l
}

// follower returns a node of the cluster other than leader.
func (c *e2eCluster) follower(leader *node) *node {
	c.t.Helper()
	for _, n := range c.nodes {
		if n != leader {
			return n
		}
	}
	c.t.Fatal("the cluster has no follower")
	return nil
}

type raftServer struct {
	NodeID string `json:"node_id"`
	Voter  bool   `json:"voter"`
	Leader bool   `json:"leader"`
}

func (c *e2eCluster) servers(n *node) ([]raftServer, error) {
	s, err := n.client(c.root).Logical().Read("sys/storage/raft/configuration")
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(s.Data["config"].(map[string]any)["servers"])
	var out []raftServer
	return out, json.Unmarshal(b, &out)
}

func (c *e2eCluster) waitVoters(want int) {
	c.t.Helper()
	testwait.Within(c.t, leaderWait, fmt.Sprintf("%d voters", want), func() bool {
		l := c.leader()
		ss, err := c.servers(l)
		if err != nil {
			return false
		}
		v := 0
		for _, s := range ss {
			if s.Voter {
				v++
			}
		}
		return v == want
	})

}

func (c *e2eCluster) running() []*node {
	var out []*node
	for _, n := range c.nodes {
		if n.running() {
			out = append(out, n)
		}
	}
	return out
}

// Writes and key use through every node; SIGKILL of the leader; a new
// leader takes writes; nothing acknowledged is lost; the killed node
// comes back and catches up.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{size: 3})
	type ct struct{ key, ct, pt string }
	var mu sync.Mutex
	var keys []string
	var cts []ct
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func(i int, n *node) {
			defer wg.Done()
			cl := n.client(c.root)
			for j := 0; j < 10; j++ {
				name := fmt.Sprintf("k-%d-%d", i, j)
				if _, err := cl.Logical().Write("transit/keys/"+name, nil); err != nil {
					t.Errorf("create %s on %s: %v", name, n.nodeID, err)
					return
				}
				pt := b64([]byte(name + " secret"))
				s, err := cl.Logical().Write("transit/encrypt/"+name, map[string]any{"plaintext": pt})
				if err != nil {
					t.Errorf("encrypt on %s: %v", n.nodeID, err)
					return
				}
				mu.Lock()
				keys = append(keys, name)
				cts = append(cts, ct{name, s.Data["ciphertext"].(string), pt})
				mu.Unlock()
			}
		}(i, n)
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	old := c.leader()
	old.kill()
	killed := time.Now()
	var survivors []*node
	for _, n := range c.nodes {
		if n != old {
			survivors = append(survivors, n)
		}
	}
	// The first write a survivor accepts after the kill: attempts start
	// every 50 ms on every survivor, each on its own, so one attempt that
	// waits for the dead leader does not hide a later one that succeeds.
	accepted := make(chan time.Duration, 1)
	ctx, stopAttempts := context.WithCancel(context.Background())
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			n := survivors[i%len(survivors)]
			go func() {
				req := n.client(c.root)
				req.SetClientTimeout(10 * time.Second)
				if _, err := req.Logical().WriteWithContext(ctx, "transit/keys/after-kill", nil); err == nil {
					select {
					case accepted <- time.Since(killed):
					default:
					}
				}
			}()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var firstWrite time.Duration
	select {
	case firstWrite = <-accepted:
	case <-time.After(leaderWait):
		stopAttempts()
		t.Fatal("no write accepted after the leader was killed")
	}
	stopAttempts()
	t.Logf("first write accepted %s after SIGKILL of the leader %s", firstWrite.Round(time.Millisecond), old.nodeID)
	for _, n := range survivors {
		cl := n.client(c.root)
		for _, k := range keys {
			if _, err := cl.Logical().Read("transit/keys/" + k); err != nil {
				t.Errorf("%s lost acknowledged key %s: %v", n.nodeID, k, err)
			}
		}
		for _, x := range cts {
			s, err := cl.Logical().Write("transit/decrypt/"+x.key, map[string]any{"ciphertext": x.ct})
			if err != nil || s.Data["plaintext"] != x.pt {
				t.Errorf("%s cannot decrypt an acknowledged ciphertext of %s: %v", n.nodeID, x.key, err)
			}
		}
	}
	// The killed node restarts sealed, unseals with the same shares and
	// catches up with what happened while it was down.
	old.start()
	old.unseal(c.shares[1], c.shares[2])
	cl := old.client(c.root)
	testwait.Within(t, leaderWait, "the restarted node to catch up", func() bool {
		_, err := cl.Logical().Read("transit/keys/after-kill")
		return err == nil
	})

	s, err := cl.Logical().Write("transit/encrypt/after-kill", map[string]any{"plaintext": b64([]byte("x"))})
	if err != nil {
		t.Fatalf("encrypt on the restarted node: %v", err)
	}
	checkDecryptsOn(t, c, survivors, "after-kill", s.Data["ciphertext"].(string), b64([]byte("x")))
	if v := read(t, c.leader().client(c.root), "sys/audit/verify"); !boolean(t, v, "valid") {
		t.Fatalf("audit chain after failover: %v", v)
	}
}

func checkDecryptsOn(t *testing.T, c *e2eCluster, nodes []*node, key, ct, pt string) {
	t.Helper()
	for _, n := range nodes {
		s, err := n.client(c.root).Logical().Write("transit/decrypt/"+key, map[string]any{"ciphertext": ct})
		if err != nil || s.Data["plaintext"] != pt {
			t.Errorf("%s: decrypt: %v", n.nodeID, err)
		}
	}
}

// A removed node comes back with an empty data dir under its old ID.
func TestClusterRemoveAndRejoin(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{size: 3})
	l := c.leader()
	var gone *node
	for _, n := range c.nodes {
		if n != l {
			gone = n
			break
		}
	}
	cl := l.client(c.root)
	write(t, cl, "transit/keys/before-removal", map[string]any{})
	// Removing through a follower is forwarded to the leader.
	var other *node
	for _, n := range c.nodes {
		if n != l && n != gone {
			other = n
		}
	}
	if _, err := other.client(c.root).Logical().Write("sys/storage/raft/remove-peer", map[string]any{"server_id": gone.nodeID}); err != nil {
		t.Fatalf("remove-peer: %v", err)
	}
	c.waitVoters(2)
	gone.stop()
	// The documented way back: empty the data dir and start again.
	if err := os.RemoveAll(gone.dataDir); err != nil {
		t.Fatal(err)
	}
	gone.start()
	c.unsealJoining(gone)
	c.waitVoters(3)
	if _, err := gone.client(c.root).Logical().Read("transit/keys/before-removal"); err != nil {
		t.Fatalf("the rejoined node does not have the key: %v", err)
	}
}

// Five nodes keep working with two of them dead (the leader among them).
func TestFiveNodesTwoDead(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{size: 5})
	l := c.leader()
	write(t, l.client(c.root), "transit/keys/five", map[string]any{})
	l.kill()
	for _, n := range c.nodes {
		if n != l {
			n.kill()
			break
		}
	}
	live := c.running()
	if len(live) != 3 {
		t.Fatalf("%d nodes running, want 3", len(live))
	}
	testwait.Within(t, leaderWait, "a write with two of five nodes dead", func() bool {
		_, err := live[0].client(c.root).Logical().Write("transit/keys/five/rotate", nil)
		return err == nil
	})

	for _, n := range live {
		s := encrypt(t, n.client(c.root), "five", []byte("still up"))
		checkDecryptsOn(t, c, live, "five", s, b64([]byte("still up")))
	}
}

// A node cut off from the others cannot write, stops serving key use once
// its lease has run out, and catches up after the partition heals. The
// node cut off is the leader, so the majority elects another one and
// rotates the key meanwhile.
func TestClusterPartitionedLeader(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{size: 3, proxies: true})
	old := c.leader()
	write(t, old.client(c.root), "transit/keys/p", map[string]any{})
	encrypt(t, old.client(c.root), "p", []byte("before"))

	c.faults.isolate(old.bindIP)
	var majority []*node
	for _, n := range c.nodes {
		if n != old {
			majority = append(majority, n)
		}
	}
	// The majority elects a new leader and rotates the key.
	testwait.Within(t, leaderWait, "the majority to rotate the key", func() bool {
		cl := majority[0].client(c.root)
		cl.SetClientTimeout(3 * time.Second)
		_, err := cl.Logical().Write("transit/keys/p/rotate", nil)
		return err == nil
	})

	// The cut-off node refuses key use: never a 200 with the old version.
	// (It cannot record the refusal either, so the 503 names the audit
	// log; the lease check answers the same way without waiting.)
	ocl := old.client(c.root)
	ocl.SetClientTimeout(30 * time.Second)
	for i := 0; i < 3; i++ {
		_, err := ocl.Logical().Write("transit/encrypt/p", map[string]any{"plaintext": b64([]byte("x"))})
		if err == nil {
			t.Fatal("the cut-off node encrypted with a key rotated on the majority side")
		}
		if !isStatus(err, 503) {
			t.Fatalf("the cut-off node answered key use with %v, want 503", err)
		}
	}
	if _, err := ocl.Logical().Write("transit/keys/q", nil); err == nil {
		t.Fatal("the cut-off node accepted a write")
	}
	c.faults.heal()
	testwait.Within(t, leaderWait, "the healed node to serve the rotated key", func() bool {
		s, err := ocl.Logical().Write("transit/encrypt/p", map[string]any{"plaintext": b64([]byte("x"))})
		return err == nil && strings.HasPrefix(s.Data["ciphertext"].(string), "vault:v2:")
	})

}

// Join mistakes get clear errors and leave the cluster unharmed.
func TestClusterJoinBadInput(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{size: 1})
	l := c.nodes[0]
	post := func(n *node, path string, body any) (int, string) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", n.addr+"/v1/"+path, strings.NewReader(string(b)))
		req.Header.Set("X-Vault-Token", c.root)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	// Removing the last voter.
	if code, body := post(l, "sys/storage/raft/remove-peer", map[string]any{"server_id": "n1"}); code != 400 || !strings.Contains(body, "last voter") {
		t.Fatalf("remove the last voter: %d %s", code, body)
	}
	// A node ID that already exists.
	if code, body := post(l, "sys/storage/raft/bootstrap/challenge", map[string]any{"server_id": "n1"}); code != 400 || !strings.Contains(body, "already a member") {
		t.Fatalf("challenge for an existing ID: %d %s", code, body)
	}
	// A wrong answer.
	code, body := post(l, "sys/storage/raft/bootstrap/challenge", map[string]any{"server_id": "n7"})
	var ch struct {
		Data struct {
			ID string `json:"challenge_id"`
		} `json:"data"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &ch) != nil || ch.Data.ID == "" {
		t.Fatalf("challenge: %d %s", code, body)
	}
	if code, body := post(l, "sys/storage/raft/bootstrap/answer", map[string]any{"server_id": "n7", "challenge_id": ch.Data.ID, "cluster_addr": "127.0.0.1:1", "answer": b64(make([]byte, 32)), "csr": b64([]byte("x"))}); code != 403 {
		t.Fatalf("wrong answer: %d %s", code, body)
	}
	// An expired or never issued challenge.
	if code, body := post(l, "sys/storage/raft/bootstrap/answer", map[string]any{"server_id": "n8", "cluster_addr": "127.0.0.1:1", "answer": b64(make([]byte, 32)), "csr": b64([]byte("x"))}); code != 400 || !strings.Contains(body, "no open challenge") {
		t.Fatalf("answer without a challenge: %d %s", code, body)
	}
	// A fresh node told to join something that is not keyraft.
	notKeyraft := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>hello</html>")
	}))
	defer notKeyraft.Close()
	fresh := c.newNode("n2", 2, "")
	fresh.start()
	if code, body := post(fresh, "sys/storage/raft/join", map[string]any{"leader_api_addr": notKeyraft.URL}); code != 400 || !strings.Contains(body, "not a keyraft node") {
		t.Fatalf("join a non-keyraft address: %d %s", code, body)
	}
	// The node joins for real, but is unsealed with another cluster's
	// keys: refused, and the cluster still has one server.
	if code, body := post(fresh, "sys/storage/raft/join", map[string]any{"leader_api_addr": l.addr}); code != 200 {
		t.Fatalf("join: %d %s", code, body)
	}
	other := newConfigNode(t)
	other.start()
	otherShares, _, _ := other.initNode(3, 2)
	fc := fresh.client("")
	fc.Sys().Unseal(otherShares[0])
	if _, err := fc.Sys().Unseal(otherShares[1]); err == nil {
		t.Fatal("a node unsealed with another cluster's keys joined")
	}
	ss, err := c.servers(l)
	if err != nil || len(ss) != 1 {
		t.Fatalf("servers after refused joins: %+v %v", ss, err)
	}
	// The operator's CLI lists the member and its health.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := runCLI(ctx, l.addr, c.root, "operator", "members")
	if err != nil || !strings.Contains(out, "n1") || !strings.Contains(out, "alive") {
		t.Fatalf("keyraft operator members: %v\n%s", err, out)
	}
}

// runCLI runs the keyraft CLI against addr and returns its combined
// output.
func runCLI(ctx context.Context, addr, token string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, keyraftBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KEYRAFT_ADDR=" + addr, "KEYRAFT_TOKEN=" + token}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// A snapshot saved on one 3-node cluster restored onto a fresh 3-node
// cluster: every node of the target seals, unseals with the source's
// shares, and decrypts the source's ciphertexts.
func TestClusterSnapshotOntoFreshCluster(t *testing.T) {
	t.Parallel()
	a := startCluster(t, clusterOpts{size: 3})
	la := a.leader()
	write(t, la.client(a.root), "transit/keys/moved", map[string]any{})
	follower := a.follower(la)
	ct := encrypt(t, follower.client(a.root), "moved", []byte("from cluster a"))
	// Saved on a follower: its own replicated state.
	testwait.Within(t, leaderWait, "the follower to have the key", func() bool {
		_, err := follower.client(a.root).Logical().Read("transit/keys/moved")
		return err == nil
	})

	code, snap := rawSnapshot(t, follower, a.root, "GET", "sys/storage/raft/snapshot", nil)
	if code != 200 {
		t.Fatalf("snapshot save on a follower: %d", code)
	}
	for _, n := range a.nodes {
		n.stop()
	}

	b := startCluster(t, clusterOpts{size: 3})
	if code, body := rawSnapshot(t, b.leader(), b.root, "POST", "sys/storage/raft/snapshot-force", snap); code != 204 {
		t.Fatalf("forced restore: %d %s", code, body)
	}
	for _, n := range b.nodes {
		cl := n.client("")
		testwait.Within(t, leaderWait, n.nodeID+" to seal after the restore", func() bool {
			st, err := cl.Sys().SealStatus()
			return err == nil && st.Sealed
		})

		n.unseal(a.shares[0], a.shares[2])
	}
	for _, n := range b.nodes {
		cl := n.client(a.root)
		var got []byte
		testwait.Within(t, leaderWait, n.nodeID+" to decrypt the source's ciphertext", func() bool {
			s, err := cl.Logical().Write("transit/decrypt/moved", map[string]any{"ciphertext": ct})
			if err != nil {
				return false
			}
			got = mustDecodeB64(t, s.Data["plaintext"].(string))
			return true
		})

		if string(got) != "from cluster a" {
			t.Fatalf("%s decrypted %q", n.nodeID, got)
		}
	}
	if v := read(t, b.leader().client(a.root), "sys/audit/verify"); !boolean(t, v, "valid") {
		t.Fatalf("audit after the restore: %v", v)
	}
}
