package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyraft/keyraft/internal/testwait"
)

// stateRecord reads a record's stored bytes (its barrier ciphertext) from
// a stopped node's state.db, the way someone with the disk would.
func stateRecord(t *testing.T, n *node, key string) []byte {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(n.dataDir, "state.db"), 0o600, &bbolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []byte
	db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte("records")); b != nil {
			out = bytes.Clone(b.Get([]byte(key)))
		}
		return nil
	})
	if len(out) < 8+64 {
		t.Fatalf("%s: record %s not found in state.db", n.nodeID, key)
	}
	return out[8:] // after the revision header: the barrier ciphertext
}

// restartNode stops a cluster node, runs fn on its data dir, starts and
// unseals it again.
func (c *e2eCluster) restartNode(n *node, fn func()) {
	c.t.Helper()
	if code := n.stop(); code != 0 {
		c.t.Fatalf("%s exited with %d on SIGTERM", n.nodeID, code)
	}
	fn()
	n.start()
	n.unseal(c.shares[0], c.shares[1])
}

// TestDestroyedKeyLeavesNoTrace checks promise 5 on a 3-node cluster of
// real processes: an exportable key is created, used and rotated; its
// raw versions (exported) and the barrier-encrypted forms of its record
// (read from a stopped node's state.db after the create and after the
// rotation) are on disk before; it is destroyed with a 1 s pending window
// (the test-only override); once every node reports the purge, no file
// in any node's data dir holds any of them.
//
// In the second variant one node is stopped while the key is destroyed
// and comes back afterwards: it catches up (by snapshot, since the others
// kept no log) and purges its own disk too.
func TestDestroyedKeyLeavesNoTrace(t *testing.T) {
	t.Parallel()
	for _, down := range []bool{false, true} {
		t.Run(map[bool]string{false: "all-up", true: "node-down"}[down], func(t *testing.T) {
			t.Parallel()
			testDestroyedKeyLeavesNoTrace(t, down)
		})
	}
}

func testDestroyedKeyLeavesNoTrace(t *testing.T, down bool) {
	c := startCluster(t, clusterOpts{size: 3, env: []string{"KEYRAFT_UNSAFE_TEST_MIN_PENDING_WINDOW=1s"},
		flags: []string{"-unsafe-test-settings"}}) // config servers refuse the variable without it
	cl := c.leader().client(c.root)
	spy := c.nodes[2]

	var secrets secretSet
	var records [][]byte
	write(t, cl, "transit/keys/doomed", map[string]any{"exportable": true, "deletion_allowed": true})
	write(t, cl, "transit/keys/doomed/config", map[string]any{"deletion_allowed": true})
	testwait.Within(t, leaderWait, spy.nodeID+" has the key", func() bool {
		s, err := spy.client(c.root).Logical().Read("transit/keys/doomed")
		return err == nil && s != nil
	})

	c.restartNode(spy, func() { records = append(records, stateRecord(t, spy, "transit/key/doomed")) })
	cl = c.leader().client(c.root)
	ct := encrypt(t, cl, "doomed", []byte("data under the doomed key"))
	write(t, cl, "transit/keys/doomed/rotate", nil)
	testwait.Within(t, leaderWait, spy.nodeID+" has version 2", func() bool {
		s, err := spy.client(c.root).Logical().Read("transit/keys/doomed")
		return err == nil && s != nil && fmt.Sprint(s.Data["latest_version"]) == "2"
	})

	c.restartNode(spy, func() { records = append(records, stateRecord(t, spy, "transit/key/doomed")) })
	cl = c.leader().client(c.root)
	s, err := cl.Logical().Read("transit/export/encryption-key/doomed")
	if err != nil {
		t.Fatal(err)
	}
	for v, m := range s.Data["keys"].(map[string]any) {
		if err := secrets.addKeyMaterial("doomed v"+v, m.(string)); err != nil {
			t.Fatal(err)
		}
	}
	// The record's ciphertext (head and tail) as it was after the create
	// and after the rotation.
	for i, r := range records {
		secrets.push(fmt.Sprintf("record %d ciphertext (head)", i+1), r[:64])
		secrets.push(fmt.Sprintf("record %d ciphertext (tail)", i+1), r[len(r)-64:])
	}
	// Snapshots on every node, so that old snapshot files hold it too.
	// A node just restarted has no snapshot yet and nothing new to take
	// one of until it applies an entry (audit batches bring some soon).
	for _, n := range c.nodes {
		testwait.Within(t, leaderWait, n.nodeID+" to take a snapshot", func() bool {
			ok, _ := trySnapshot(n, c.root)
			return ok
		})

	}
	found := 0
	for _, n := range c.nodes {
		hits := filesHolding(t, n, &secrets)
		t.Logf("%s before destruction: %v", n.nodeID, hits)
		found += len(hits)
	}
	if found == 0 {
		t.Fatal("the key's record ciphertext is in no file before destruction; the scan would prove nothing")
	}

	if down {
		if code := spy.stop(); code != 0 {
			t.Fatalf("%s exited with %d on SIGTERM", spy.nodeID, code)
		}
		cl = c.leader().client(c.root)
	}
	write(t, cl, "transit/keys/doomed/destroy", map[string]any{"pending_window": "1s"})
	for _, n := range c.running() {
		testwait.Within(t, leaderWait, n.nodeID+" purged the destroyed key from disk", func() bool {
			return n.logHas("purged destroyed key material from disk")
		})

	}
	if down {
		spy.start()
		spy.unseal(c.shares[0], c.shares[1])
		testwait.Within(t, leaderWait, spy.nodeID+" (down during the destruction) purged its disk", func() bool {
			return spy.logHas("purged destroyed key material from disk")
		})

	}
	for _, n := range c.nodes {
		for _, p := range n.logs {
			b, _ := os.ReadFile(p)
			for _, line := range bytes.Split(b, []byte("\n")) {
				if bytes.Contains(line, []byte("purged destroyed key material")) {
					t.Logf("%s: %s", n.nodeID, line)
				}
			}
		}
		kr := read(t, n.client(c.root), "transit/keys/doomed")
		if str(t, kr, "state") != "destroyed" {
			t.Fatalf("%s: state %v", n.nodeID, kr["state"])
		}
		if hits := filesHolding(t, n, &secrets); len(hits) > 0 {
			t.Errorf("%s: after destruction: %v", n.nodeID, hits)
		}
	}
	// Every use is a clear 4xx, on every node.
	for _, n := range c.nodes {
		_, err := n.client(c.root).Logical().Write("transit/decrypt/doomed", map[string]any{"ciphertext": ct})
		if statusOf(err) != 400 {
			t.Errorf("%s: decrypt with a destroyed key: %v", n.nodeID, err)
		}
	}
}

// filesHolding lists "file: secret" for every secret found in a file of
// the node's data dir.
func filesHolding(t *testing.T, n *node, secrets *secretSet) []string {
	t.Helper()
	var hits []string
	filepath.Walk(n.dataDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		_, found, err := scanFile(p, secrets.needles)
		if err != nil {
			return nil // removed while walking
		}
		for _, i := range found {
			rel, _ := filepath.Rel(n.dataDir, p)
			hits = append(hits, rel+": "+secrets.names[i])
		}
		return nil
	})
	return hits
}

// logHas reports whether any log of the node's processes contains s.
func (n *node) logHas(s string) bool {
	for _, p := range n.logs {
		if n.logContains(p, s) {
			return true
		}
	}
	return false
}

// trySnapshot asks a node for a snapshot (which takes a Raft snapshot on it).
func trySnapshot(n *node, token string) (bool, error) {
	req, err := http.NewRequest("GET", n.addr+"/v1/sys/storage/raft/snapshot", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("X-Vault-Token", token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return false, err
	}
	return res.StatusCode == 200, nil
}
