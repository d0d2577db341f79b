package e2e

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// Bring your own key on a 3-node cluster of real processes: the first
// wrapping_key calls, made at once on every node, agree on one key; a key
// imported with the keyraft CLI through a follower is the key every node
// then encrypts with, and it survives a SIGKILL of the node that
// imported it.
func TestBYOKCluster(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{size: 3})
	pems := make([]string, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := n.client(c.root).Logical().Read("transit/wrapping_key")
			if err != nil || s == nil {
				t.Errorf("wrapping_key on %s: %v", n.nodeID, err)
				return
			}
			pems[i], _ = s.Data["public_key"].(string)
		}()
	}
	wg.Wait()
	if pems[0] == "" || pems[0] != pems[1] || pems[1] != pems[2] {
		t.Fatal("the nodes' first wrapping_key calls returned different keys")
	}

	// Import through a follower with the real CLI binary.
	leader := c.leader()
	var via *node
	for _, n := range c.nodes {
		if n != leader {
			via = n
			break
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	file := filepath.Join(t.TempDir(), "key.bin")
	if err := os.WriteFile(file, key, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := runCLI(ctx, via.addr, c.root, "keys", "import", "-type=aes256-gcm96", "byok", file); err != nil || !strings.Contains(out, "Imported key byok") {
		t.Fatalf("keys import via %s: %v\n%s", via.nodeID, err, out)
	}
	via.kill()
	for _, n := range c.nodes {
		if n == via {
			continue
		}
		var ct string
		testwait.Within(t, 30*time.Second, "an encryption with the imported key on "+n.nodeID, func() bool {
			s, err := n.client(c.root).Logical().Write("transit/encrypt/byok", map[string]any{"plaintext": b64([]byte("payload"))})
			if err != nil || s == nil {
				return false
			}
			ct, _ = s.Data["ciphertext"].(string)
			return true
		})

		body, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct, "vault:v1:"))
		if err != nil || len(body) < 12 {
			t.Fatalf("ciphertext from %s: %q", n.nodeID, ct)
		}
		blk, _ := aes.NewCipher(key)
		g, _ := cipher.NewGCM(blk)
		if pt, err := g.Open(nil, body[:12], body[12:], nil); err != nil || string(pt) != "payload" {
			t.Fatalf("%s did not encrypt under the imported key: %v", n.nodeID, err)
		}
	}
}
