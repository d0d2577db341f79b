package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/keyraft/keyraft/internal/testwait"
)

const softhsmLib = "/usr/lib/softhsm/libsofthsm2.so"

// newSharedToken makes a SoftHSM2 token directory with one token,
// "keyraft" (PIN 1234), and returns the SOFTHSM2_CONF environment entry
// that points a process at it. Every node of a cluster uses the same
// token, as nodes share a network HSM.
func newSharedToken(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(softhsmLib); err != nil {
		t.Fatalf("SoftHSM2 is not installed (%v): run 'bash scripts/test.sh', which installs softhsm2 and opensc", err)
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
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "keyraft", "--pin", "1234", "--so-pin", "5678")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return "SOFTHSM2_CONF=" + conf
}

const pkcs11Seal = `seal "pkcs11" {
  lib          = "` + softhsmLib + `"
  token_label  = "keyraft"
  key_label    = "keyraft-root"
  generate_key = true
}`

// A 3-node cluster whose nodes all unseal through the PKCS#11 seal
// (SoftHSM2, one shared token): init returns recovery keys, nodes join by
// proving they can use the seal, the PIN comes from KEYRAFT_HSM_PIN, and
// after all nodes are killed and restarted at once every node unseals
// itself. The key inside the token is sensitive and never extractable.
func TestPKCS11ClusterRestartAllAtOnce(t *testing.T) {
	t.Parallel()
	tokenEnv := newSharedToken(t)
	var nodes []*node
	var root string
	for i := 1; i <= 3; i++ {
		storage := autopilotHCL
		if i > 1 {
			storage += fmt.Sprintf("\n  retry_join {\n    leader_api_addr = %q\n  }", nodes[0].addr)
		}
		n := newConfigNodeWith(t, storage)
		n.nodeID = fmt.Sprintf("n%d", i)
		n.seal = pkcs11Seal
		n.env = []string{tokenEnv, "KEYRAFT_HSM_PIN=1234"}
		n.writeNodeConfig()
		n.start()
		if i == 1 {
			// Through the CLI, as an operator would.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			out, err := runCLI(ctx, n.addr, "", "operator", "init", "-recovery-shares=3", "-recovery-threshold=2", "-format=json")
			cancel()
			var res struct {
				Keys        []string `json:"keys"`
				RecoveryB64 []string `json:"recovery_keys_base64"`
				RootToken   string   `json:"root_token"`
			}
			if err != nil || json.Unmarshal([]byte(out), &res) != nil || len(res.RecoveryB64) != 3 || len(res.Keys) != 0 || res.RootToken == "" {
				t.Fatalf("keyraft operator init -recovery-shares=3: %v\n%s", err, out)
			}
			root = res.RootToken
		}
		nodes = append(nodes, n)
		cl := n.client("")
		testwait.Within(t, leaderWait, n.nodeID+" to unseal itself", func() bool {
			st, err := cl.Sys().SealStatus()
			return err == nil && !st.Sealed && st.Type == "pkcs11" && st.RecoverySeal
		})

	}
	c := &e2eCluster{t: t, nodes: nodes, root: root}
	c.waitVoters(3)
	write(t, nodes[1].client(root), "transit/keys/hsm", map[string]any{})
	ct := encrypt(t, nodes[2].client(root), "hsm", []byte("behind the hsm"))
	// A key that never leaves the HSM: made by node 2's pkcs11 crypto
	// plugin, used by node 3's (one token behind both).
	if k := write(t, nodes[1].client(root), "transit/keys/in-hsm", map[string]any{"backend": "pkcs11"}); k["backend"] != "pkcs11" {
		t.Fatalf("key on the pkcs11 backend: %v", k)
	}
	inHSM := encrypt(t, nodes[2].client(root), "in-hsm", []byte("inside the hsm"))
	// No software HMAC key is made for a key the HSM keeps: hmac is refused.
	if _, err := nodes[0].client(root).Logical().Write("transit/hmac/in-hsm", map[string]any{"input": b64([]byte("x"))}); !isStatus(err, 400) {
		t.Fatalf("hmac with an HSM encryption key: %v", err)
	}
	// Signing inside the HSM, verified by another node with the public key.
	if k := write(t, nodes[0].client(root), "transit/keys/hsm-signer", map[string]any{"type": "ed25519", "backend": "pkcs11"}); k["backend"] != "pkcs11" {
		t.Fatalf("ed25519 key on the pkcs11 backend: %v", k)
	}
	sig := write(t, nodes[0].client(root), "transit/sign/hsm-signer", map[string]any{"input": b64([]byte("release"))})["signature"]
	testwait.Within(t, leaderWait, "another node to verify the HSM signature", func() bool {
		v, err := nodes[2].client(root).Logical().Write("transit/verify/hsm-signer", map[string]any{"input": b64([]byte("release")), "signature": sig})
		return err == nil && v.Data["valid"] == true
	})

	for _, n := range nodes {
		n.kill()
	}
	startAll(t, nodes)
	for _, n := range nodes {
		cl := n.client(root)
		testwait.Within(t, leaderWait, n.nodeID+" to unseal itself after the restart and decrypt", func() bool {
			s, err := cl.Logical().Write("transit/decrypt/hsm", map[string]any{"ciphertext": ct})
			return err == nil && s.Data["plaintext"] == b64([]byte("behind the hsm"))
		})

		s, err := cl.Logical().Write("transit/decrypt/in-hsm", map[string]any{"ciphertext": inHSM})
		if err != nil || s.Data["plaintext"] != b64([]byte("inside the hsm")) {
			t.Fatalf("%s decrypting with the key inside the HSM: %v", n.nodeID, err)
		}
	}
	h, err := nodes[0].client(root).Sys().Health()
	if err != nil || h.Sealed {
		t.Fatalf("health: %+v %v", h, err)
	}

	// What the token holds: the wrapping key, sensitive and never
	// extractable (pkcs11-tool prints the flags of each object).
	cmd := exec.Command("pkcs11-tool", "--module", softhsmLib, "--token-label", "keyraft", "--login", "--pin", "1234", "--list-objects")
	cmd.Env = append(os.Environ(), tokenEnv)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --list-objects: %v\n%s", err, out)
	}
	t.Logf("pkcs11-tool --list-objects:\n%s", out)
	listing := string(out)
	if !strings.Contains(listing, "keyraft-root") || !strings.Contains(listing, "sensitive") || !strings.Contains(listing, "never extractable") {
		t.Fatalf("the wrapping key is not shown as sensitive and never extractable:\n%s", listing)
	}
	// The transit key's object: every object listed is never extractable.
	if !strings.Contains(listing, "keyraft aes256-gcm96") {
		t.Fatalf("the pkcs11 backend's key is not in the token:\n%s", listing)
	}
	for _, obj := range strings.Split(listing, "Secret Key Object")[1:] {
		if !strings.Contains(obj, "never extractable") {
			t.Fatalf("an extractable secret key in the token:\n%s", obj)
		}
	}
}

// A 3-node cluster of real processes moves from Shamir to the PKCS#11
// seal and back, one node at a time, while clients keep encrypting: each
// node restarts with the new seal block and the old one disabled; the
// first is unsealed with 'keyraft operator unseal -migrate'. Every
// acknowledged ciphertext decrypts on every node at the end.
func TestSealMigrationUnderLoad(t *testing.T) {
	t.Parallel()
	tokenEnv := newSharedToken(t)
	c := startCluster(t, clusterOpts{size: 3})
	write(t, c.leader().client(c.root), "transit/keys/mig", map[string]any{})
	type sealed struct{ ct, pt string }
	var mu sync.Mutex
	var cts []sealed
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The clients only know the nodes' addresses (fixed across restarts):
	// the node structs change under restarts and are not shared.
	clients := make([]*vault.Client, len(c.nodes))
	for i, n := range c.nodes {
		clients[i] = n.client(c.root)
		clients[i].SetClientTimeout(5 * time.Second)
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cl := clients[(w+i)%len(clients)]
				pt := b64([]byte(fmt.Sprint(w, i)))
				s, err := cl.Logical().Write("transit/encrypt/mig", map[string]any{"plaintext": pt})
				if err == nil {
					mu.Lock()
					cts = append(cts, sealed{s.Data["ciphertext"].(string), pt})
					mu.Unlock()
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	migrate := func(sealHCL string, shares []string, want string) {
		t.Helper()
		for i, n := range c.nodes {
			n.stop()
			n.seal = sealHCL
			n.env = []string{tokenEnv, "KEYRAFT_HSM_PIN=1234"}
			n.writeNodeConfig()
			n.start()
			cl := n.client("")
			if i == 0 {
				for _, s := range shares {
					// A node that just restarted answers 503 until it has
					// applied its log; the share is not taken then.
					var out string
					var err error
					testwait.Within(t, leaderWait, n.nodeID+" to take a share with -migrate", func() bool {
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						defer cancel()
						out, err = runCLI(ctx, n.addr, "", "operator", "unseal", "-migrate", s)
						return err == nil || !strings.Contains(out, "catching up")
					})

					if err != nil {
						t.Fatalf("keyraft operator unseal -migrate: %v\n%s", err, out)
					}
				}
			} else if want == "shamir" {
				n.unseal(shares...)
			}
			testwait.Within(t, leaderWait, n.nodeID+" to be unsealed on the "+want+" seal", func() bool {
				st, err := cl.Sys().SealStatus()
				return err == nil && !st.Sealed && st.Type == want
			})

		}
	}
	migrate(pkcs11Seal+"\nseal \"shamir\" {\n  disabled = true\n}", c.shares[:2], "pkcs11")
	// Back: the recovery shares (the old unseal shares) become unseal
	// shares again.
	disabledPKCS11 := strings.Replace(pkcs11Seal, "generate_key = true", "generate_key = true\n  disabled     = true", 1)
	migrate("seal \"shamir\" {}\n"+disabledPKCS11, c.shares[1:], "shamir")
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d encrypts acknowledged across both migrations", len(cts))
	if len(cts) < 20 {
		t.Fatalf("only %d encrypts were acknowledged", len(cts))
	}
	for _, n := range c.nodes {
		cl := n.client(c.root)
		for _, x := range cts {
			s, err := cl.Logical().Write("transit/decrypt/mig", map[string]any{"ciphertext": x.ct})
			if err != nil || s.Data["plaintext"] != x.pt {
				t.Fatalf("%s cannot decrypt a ciphertext acknowledged during the migration: %v", n.nodeID, err)
			}
		}
	}
}
