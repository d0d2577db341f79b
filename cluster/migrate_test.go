package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// A 3-node Shamir cluster moves to the PKCS#11 seal node by node and back,
// under a steady stream of writes: no acknowledged write is lost, every
// node serves after each step, and the unseal shares become the recovery
// shares (and back).
func TestSealMigrationBothWaysUnderLoad(t *testing.T) {
	h := newSoftHSM(t)
	ctx := context.Background()
	fixed := func(id string) Config {
		c := clusterNodeConfig(t, id)
		c.BindAddr, c.GossipAddr = freeAddr(t), freeAddr(t)
		return c
	}
	cfgs := []Config{fixed("n1"), fixed("n2"), fixed("n3")}
	first, err := New(cfgs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Shutdown() })
	res, err := first.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{t: t, nodes: []*Node{first}, shares: res.Keys}
	for _, k := range res.Keys[:2] {
		if _, err := first.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cfgs[1:] {
		tc.join(ctx, c)
	}
	tc.waitVoters(3)
	nodes := tc.nodes
	t.Cleanup(func() {
		for _, n := range nodes {
			n.Shutdown()
		}
	})

	// Writes keep coming through whichever node is up.
	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			n := nodes[i%len(nodes)]
			mu.Unlock()
			key := fmt.Sprintf("load/%d", i)
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := n.Commit(wctx, &Txn{Writes: []Write{{Key: key, Value: []byte(key)}}})
			cancel()
			if err == nil {
				mu.Lock()
				acked[key] = true
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	restart := func(i int, cfg Config) *Node {
		t.Helper()
		mu.Lock()
		old := nodes[i]
		mu.Unlock()
		old.Shutdown()
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown() })
		mu.Lock()
		nodes[i] = n
		mu.Unlock()
		return n
	}

	// Shamir → PKCS#11: the first node restarts configured for the
	// migration and is unsealed once with -migrate and the unseal shares.
	for i := range cfgs {
		cfgs[i].AutoSeal, cfgs[i].AutoSealType, cfgs[i].MigrateFromShamir = h.seal, "pkcs11", true
	}
	n0 := restart(0, cfgs[0])
	testwait.Within(t, 30*time.Second, "n1 to report the pending migration", func() bool { return n0.SealStatus().Migration && n0.CaughtUp() })
	if _, err := n0.Unseal(ctx, res.Keys[0]); err == nil {
		t.Fatal("a migrating node took a share without -migrate")
	}
	unsealMigrate(t, ctx, n0, "pkcs11", res.Keys[:2])
	if st := n0.SealStatus(); st.Sealed || st.Type != "pkcs11" || !st.RecoverySeal || st.Migration {
		t.Fatalf("after migrating to pkcs11: %+v", st)
	}
	for i := 1; i < 3; i++ {
		n := restart(i, cfgs[i])
		testwait.Within(t, 60*time.Second, n.cfg.NodeID+" to unseal itself with the HSM", func() bool { return !n.Sealed() })
	}
	n0 = restart(0, cfgs[0])
	testwait.Within(t, 60*time.Second, "n1 to unseal itself after the migration", func() bool { return !n0.Sealed() })

	// PKCS#11 → Shamir: the recovery shares (the old unseal shares)
	// become unseal shares again.
	for i := range cfgs {
		cfgs[i].AutoSeal, cfgs[i].AutoSealType, cfgs[i].MigrateFromShamir = nil, "", false
		cfgs[i].OldAutoSeal, cfgs[i].OldAutoSealType = h.seal, "pkcs11"
	}
	n0 = restart(0, cfgs[0])
	testwait.Within(t, 30*time.Second, "n1 to report the pending migration back", func() bool { return n0.SealStatus().Migration && n0.CaughtUp() })
	unsealMigrate(t, ctx, n0, "shamir", [][]byte{res.Keys[2], res.Keys[0]})
	if st := n0.SealStatus(); st.Sealed || st.Type != "shamir" || st.RecoverySeal {
		t.Fatalf("after migrating back: %+v", st)
	}
	for i := range cfgs {
		cfgs[i].OldAutoSeal, cfgs[i].OldAutoSealType = nil, ""
	}
	for i := 1; i < 3; i++ {
		n := restart(i, cfgs[i])
		testwait.Within(t, 60*time.Second, n.cfg.NodeID+" to catch up", n.CaughtUp)
		for _, k := range res.Keys[1:] {
			if _, err := n.Unseal(ctx, k); err != nil {
				t.Fatalf("%s: unseal with the shares after migrating back: %v", n.cfg.NodeID, err)
			}
		}
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 10 {
		t.Fatalf("only %d writes were acknowledged during the migrations", len(acked))
	}
	for _, n := range nodes {
		testwait.Within(t, 30*time.Second, n.cfg.NodeID+" to have every acknowledged write", func() bool {
			for k := range acked {
				if v, _, err := n.Read(k); err != nil || string(v) != k {
					return false
				}
			}
			return true
		})

	}
	t.Logf("%d writes acknowledged across both migrations", len(acked))
}

// unsealMigrate gives n the shares of a seal migration to want, as an
// operator does: when the switch's commit has an unknown outcome (the
// leader changed under load), it looks whether the switch landed and, if
// not, gives the shares again.
func unsealMigrate(t *testing.T, ctx context.Context, n *Node, want string, shares [][]byte) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		var err error
		for _, k := range shares {
			if _, err = n.UnsealMigrate(ctx, k); err != nil {
				break
			}
		}
		if err == nil {
			return
		}
		if attempt == 5 || !(errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNotReady)) {
			t.Fatalf("unseal -migrate to %s (attempt %d): %v", want, attempt, err)
		}
		testwait.Within(t, time.Minute, n.cfg.NodeID+" to catch up after "+err.Error(), n.CaughtUp)
		if st := n.SealStatus(); !st.Sealed && st.Type == want && !st.Migration {
			return // the switch landed
		}
		n.ResetUnseal()
	}
}
