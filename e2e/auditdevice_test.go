package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// fileSeqs reads the seqs of the events in a JSON-lines audit file.
func fileSeqs(path string) []uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []uint64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Seq > 0 {
			out = append(out, e.Seq)
		}
	}
	return out
}

// TestAuditDevices: a file device from the config file and one added
// through sys/audit (Vault's API shape) both receive every committed
// event in order; removing the API device stops it; both survive a restart
// without duplicating events.
func TestAuditDevices(t *testing.T) {
	t.Parallel()
	n := newConfigNodeWith(t, "")
	logDir := t.TempDir()
	cfgLog := filepath.Join(logDir, "from-config.log")
	apiLog := filepath.Join(logDir, "from-api.log")
	n.topHCL = fmt.Sprintf("audit \"file\" {\n  name = \"cfg\"\n  path = %q\n}\n", cfgLog)
	n.pickPorts()
	n.start()
	shares, _, root := n.initNode(1, 1)
	n.unseal(shares[0])
	c := n.client(root)
	if _, err := c.Logical().Write("sys/audit/api-file", map[string]any{"type": "file", "options": map[string]string{"file_path": apiLog}}); err != nil {
		t.Fatalf("enable device: %v", err)
	}
	if _, err := c.Logical().Write("sys/audit/events", map[string]any{"type": "file"}); statusOf(err) != 405 {
		t.Fatalf("a reserved device name: %v", err)
	}
	if _, err := c.Logical().Write("sys/audit/bad", map[string]any{"type": "kafka"}); statusOf(err) != 400 {
		t.Fatalf("an unknown device type: %v", err)
	}
	list, err := c.Logical().Read("sys/audit")
	if err != nil || list.Data["api-file/"] == nil || list.Data["cfg/"] == nil {
		t.Fatalf("sys/audit: %v %v", list, err)
	}
	write(t, c, "transit/keys/app", map[string]any{})
	for i := 0; i < 20; i++ {
		encrypt(t, c, "app", []byte("x"))
	}
	head := func() int {
		s, err := c.Logical().ReadWithData("sys/audit/events", map[string][]string{"limit": {"1"}})
		if err != nil {
			t.Fatal(err)
		}
		return num(t, s.Data["head"].(map[string]any), "seq")
	}
	target := uint64(head())
	complete := func(path string) bool {
		seqs := fileSeqs(path)
		return len(seqs) > 0 && seqs[len(seqs)-1] >= target
	}
	testwait.Within(t, 30*time.Second, "both devices to catch up", func() bool { return complete(cfgLog) && complete(apiLog) })
	for _, p := range []string{cfgLog, apiLog} {
		seqs := fileSeqs(p)
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Fatalf("%s: line %d has seq %d", filepath.Base(p), i+1, s)
			}
		}
	}

	if _, err := c.Logical().Delete("sys/audit/api-file"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Delete("sys/audit/api-file"); statusOf(err) != 404 {
		t.Fatalf("second delete: %v", err)
	}

	// Restart: the config device resumes where its cursor was, no duplicates.
	n.kill()
	n.start()
	n.unseal(shares[0])
	c = n.client(root)
	encrypt(t, c, "app", []byte("after restart"))
	target = uint64(head())
	testwait.Within(t, 30*time.Second, "the config device to catch up after restart", func() bool { return complete(cfgLog) })
	seqs := fileSeqs(cfgLog)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("after restart: line %d has seq %d (duplicate or gap)", i+1, s)
		}
	}
}
