package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keyraft/keyraft/internal/testwait"
)

// TestDevServer starts 'keyraft server -dev' on a port the OS picks,
// reads the address, unseal key and root token from its banner, uses
// them, and stops it with SIGTERM or SIGINT: exit 0, and the temporary
// data dir is gone.
func TestDevServer(t *testing.T) {
	t.Parallel()
	for name, sig := range map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := newDevNode(t, "-dev-root-token-id=dev-root")
			n.start()
			var unsealKey, rootToken string
			for _, line := range n.stdoutLines() {
				if v, ok := strings.CutPrefix(line, "Unseal Key: "); ok {
					unsealKey = v
				}
				if v, ok := strings.CutPrefix(line, "Root Token: "); ok {
					rootToken = v
				}
			}
			if unsealKey == "" || rootToken != "dev-root" {
				t.Fatalf("banner: unseal key %q, root token %q (want dev-root)", unsealKey, rootToken)
			}
			dataDirs, _ := filepath.Glob(filepath.Join(n.dir, "keyraft-dev-*"))
			if len(dataDirs) != 1 {
				t.Fatalf("dev data dirs under TMPDIR: %v, want one", dataDirs)
			}

			c := n.client(rootToken)
			h, err := c.Sys().Health()
			if err != nil || !h.Initialized || h.Sealed {
				t.Fatalf("health of a dev node: %+v, %v", h, err)
			}
			pt := []byte("dev data")
			ct := encrypt(t, c, "k", pt) // upsert creates the key
			if string(decrypt(t, c, "k", ct)) != string(pt) {
				t.Errorf("dev node: round trip failed")
			}
			if err := c.Sys().Seal(); err != nil {
				t.Fatal(err)
			}
			n.unseal(unsealKey)
			if string(decrypt(t, c, "k", ct)) != string(pt) {
				t.Errorf("dev node: round trip after seal and unseal with the banner's key failed")
			}

			n.cmd.Process.Signal(sig)
			<-n.exited
			if code := n.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("%s: exit code %d, want 0", name, code)
			}
			if _, err := os.Stat(dataDirs[0]); !os.IsNotExist(err) {
				t.Errorf("dev data dir %s still there after %s (%v)", dataDirs[0], name, err)
			}
		})
	}
}

// keyraft server -dev-cluster 3: three real nodes, initialized, joined
// and unsealed; every node serves key use, all three vote, and the data
// is removed on exit.
func TestDevCluster(t *testing.T) {
	t.Parallel()
	n := newDevNode(t, "-dev-root-token-id=dev-root")
	n.devCluster = 3
	n.start()
	var apis []string
	for _, line := range n.stdoutLines() {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.HasPrefix(f[0], "node") && f[1] == "api" {
			apis = append(apis, f[2])
		}
	}
	if len(apis) != 3 {
		t.Fatalf("banner lists %d nodes: %v", len(apis), n.stdoutLines())
	}
	first := n.client("dev-root")
	ct := encrypt(t, first, "k", []byte("on every node"))
	for _, addr := range apis {
		c := n.client("dev-root")
		if err := c.SetAddress(addr); err != nil {
			t.Fatal(err)
		}
		testwait.Within(t, leaderWait, addr+" to decrypt", func() bool {
			s, err := c.Logical().Write("transit/decrypt/k", map[string]any{"ciphertext": ct})
			return err == nil && s.Data["plaintext"] == b64([]byte("on every node"))
		})

	}
	testwait.Within(t, leaderWait, "three voters", func() bool {
		s, err := first.Logical().Read("sys/storage/raft/configuration")
		if err != nil {
			return false
		}
		servers, _ := s.Data["config"].(map[string]any)["servers"].([]any)
		voters := 0
		for _, sv := range servers {
			if sv.(map[string]any)["voter"] == true {
				voters++
			}
		}
		return voters == 3
	})

	if code := n.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	if dirs, _ := filepath.Glob(filepath.Join(n.dir, "keyraft-dev-cluster-*")); len(dirs) != 0 {
		t.Fatalf("dev cluster data left behind: %v", dirs)
	}
}
