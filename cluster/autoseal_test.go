package cluster

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/seal"
	"github.com/keyraft/keyraft/seal/pkcs11"
)

// softHSM is a throwaway SoftHSM2 token directory with one token,
// "keyraft", PIN 1234. Every node of a test shares it, as nodes share a
// network HSM.
type softHSM struct {
	lib string
	mu  sync.Mutex
	pin string // what the nodes' seals log in with (tests change it)
}

func newSoftHSM(t testing.TB) *softHSM {
	t.Helper()
	lib := "/usr/lib/softhsm/libsofthsm2.so"
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("SoftHSM2 is not installed (%v): run 'bash scripts/test.sh', which installs softhsm2 and opensc with apt", err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "keyraft", "--pin", "1234", "--so-pin", "5678").CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return &softHSM{lib: lib, pin: "1234"}
}

func (h *softHSM) setPIN(pin string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pin = pin
}

// seal is a node's AutoSeal: the AES-GCM key "keyraft-root", made on
// first use inside the token (sensitive, never extractable).
func (h *softHSM) seal(ctx context.Context) (seal.Seal, error) {
	h.mu.Lock()
	pin := h.pin
	h.mu.Unlock()
	return pkcs11.Open(pkcs11.Config{Lib: h.lib, TokenLabel: "keyraft", PIN: pin, KeyLabel: "keyraft-root", GenerateKey: true})
}

func (h *softHSM) nodeConfig(t testing.TB, id string) Config {
	c := clusterNodeConfig(t, id)
	c.AutoSeal, c.AutoSealType = h.seal, "pkcs11"
	// Fixed ports: the nodes restart and must be found where they were.
	c.BindAddr = freeAddr(t)
	c.GossipAddr = freeAddr(t)
	return c
}

// freeAddr picks a port below the kernel's ephemeral range (32768 and
// up), free for TCP and UDP now: ports the OS hands out for port 0 — to
// the tests of other packages running at the same time — never collide
// with it, and the node can restart on it.
// (Ports 20000-25999 belong to this package's tests, 26000-31999 to the
// e2e tests, which run at the same time; none is handed out twice.)
var handedOut sync.Map

func freeAddr(t testing.TB) string {
	t.Helper()
	for i := 0; i < 1000; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+mathrand.IntN(6000))
		if _, dup := handedOut.LoadOrStore(addr, true); dup {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatal("no free port in 20000-25999")
	return ""
}

// A node with the PKCS#11 seal: init returns recovery keys and leaves it
// unsealed; after a restart it unseals itself with no human.
func TestPKCS11AutoUnsealSingleNode(t *testing.T) {
	h := newSoftHSM(t)
	ctx := context.Background()
	cfg := h.nodeConfig(t, "n1")
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	res, err := n.Init(ctx, InitRequest{RecoveryShares: 3, RecoveryThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RecoveryKeys) != 3 || len(res.Keys) != 0 || res.RootToken == "" {
		t.Fatalf("init with an auto seal: %d recovery keys, %d keys", len(res.RecoveryKeys), len(res.Keys))
	}
	st := n.SealStatus()
	if st.Sealed || st.Type != "pkcs11" || !st.RecoverySeal || st.Threshold != 2 || st.Shares != 3 {
		t.Fatalf("seal status after init: %+v", st)
	}
	if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: "k", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Unseal(ctx, res.RecoveryKeys[0]); !errors.Is(err, ErrAutoSeal) {
		t.Fatalf("unseal with a share on an auto-seal node: %v", err)
	}
	// The root key in the state is the HSM's ciphertext, and no Shamir
	// blob exists.
	if b, _, _ := n.fsm.Get(fsm.RecordRootKey); b != nil {
		t.Fatal("an auto-seal cluster stored a Shamir-wrapped root key")
	}
	n.Shutdown()

	n2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Shutdown() })
	defer n2.Shutdown()
	testwait.Within(t, 30*time.Second, "the restarted node to unseal itself", func() bool { return !n2.Sealed() })
	if v, _, err := n2.Read("k"); err != nil || string(v) != "v" {
		t.Fatalf("after auto-unseal: %q %v", v, err)
	}
	if ok, why := n2.SealHealth(); !ok {
		t.Fatalf("seal health after auto-unseal: %s", why)
	}
	// An operator's seal holds until a restart (watched over several
	// rounds of the auto-unseal loop).
	n2.Seal()
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if !n2.Sealed() {
			t.Fatal("an auto-seal node unsealed itself after the operator sealed it")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A wrong PIN leaves the node sealed and its health says why; once the
// PIN is right the node unseals itself on a retry.
func TestPKCS11WrongPINRetries(t *testing.T) {
	h := newSoftHSM(t)
	ctx := context.Background()
	cfg := h.nodeConfig(t, "n1")
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	if _, err := n.Init(ctx, InitRequest{RecoveryShares: 1, RecoveryThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	n.Shutdown()
	h.setPIN("0000")
	n2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Shutdown() })
	defer n2.Shutdown()
	testwait.Within(t, 30*time.Second, "the seal to report the wrong PIN", func() bool {
		ok, why := n2.SealHealth()
		return !ok && why != ""
	})

	if !n2.Sealed() {
		t.Fatal("unsealed with a wrong PIN")
	}
	if _, why := n2.SealHealth(); contains(why, "0000") {
		t.Fatalf("the seal error shows the PIN: %s", why)
	}
	h.setPIN("1234")
	testwait.Within(t, 60*time.Second, "the node to unseal once the PIN is right", func() bool { return !n2.Sealed() })
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (s == sub || len(s) > 0 && (indexOf(s, sub) >= 0))
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// Three nodes share the HSM token (as with a network HSM): nodes join by
// proving they can use the seal (no shares), and after all of them
// restart at once every node unseals itself.
func TestPKCS11ClusterRestartAll(t *testing.T) {
	h := newSoftHSM(t)
	ctx := context.Background()
	var cfgs []Config
	first, err := New(func() Config { c := h.nodeConfig(t, "n1"); cfgs = append(cfgs, c); return c }())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Shutdown() })
	if _, err := first.Init(ctx, InitRequest{RecoveryShares: 3, RecoveryThreshold: 2}); err != nil {
		t.Fatal(err)
	}
	nodes := []*Node{first}
	for _, id := range []string{"n2", "n3"} {
		c := h.nodeConfig(t, id)
		cfgs = append(cfgs, c)
		n, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown() })
		ch, err := first.JoinChallenge(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.PrepareJoin(ch, first.AdmitNode); err != nil {
			t.Fatal(err)
		}
		if err := n.CompleteAutoJoin(ctx); err != nil {
			t.Fatalf("%s joining with the seal: %v", id, err)
		}
		if n.Sealed() {
			t.Fatalf("%s joined but is sealed", id)
		}
		nodes = append(nodes, n)
	}
	tc := &testCluster{t: t, nodes: nodes}
	tc.waitVoters(3)
	if _, err := nodes[2].Commit(ctx, &Txn{Writes: []Write{{Key: "k", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		n.Shutdown()
	}
	var again []*Node
	for _, c := range cfgs {
		n, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown() })
		t.Cleanup(func() { n.Shutdown() })
		again = append(again, n)
	}
	for _, n := range again {
		if !testwait.Poll(60*time.Second, func() bool { return !n.Sealed() }) {
			ok, why := n.SealHealth()
			c, a := n.RaftIndexes()
			t.Fatalf("%s did not unseal itself after the restart: seal health %v %q, caught up %v, commit %d applied %d boot %d",
				n.cfg.NodeID, ok, why, n.CaughtUp(), c, a, n.bootIndex)
		}
		testwait.Within(t, 30*time.Second, n.cfg.NodeID+" to serve the data", func() bool {
			v, _, err := n.Read("k")
			return err == nil && string(v) == "v"
		})

	}
}
