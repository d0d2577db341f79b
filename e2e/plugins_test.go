package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// childCommands returns the command lines of pid's child processes.
func childCommands(pid int) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at ')'.
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out[cpid] = strings.Join(strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00"), " ")
	}
	return out
}

// pluginPid is the pid of the child of n that serves the built-in
// plugin name, or 0.
func pluginPid(n *node, name string) int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	for pid, cmd := range childCommands(n.cmd.Process.Pid) {
		if strings.Contains(cmd, "serve-builtin "+name) || strings.Contains(cmd, "keyraft-plugin-"+name) {
			return pid
		}
	}
	return 0
}

// A 3-node cluster runs every backend out of process: each node's state
// store (bolt) and crypto backend (soft) are its child processes. The
// soft plugin of the leader is killed with SIGKILL under load from every
// node: only requests in flight on that node fail, with a clear 503;
// the plugin is back by itself and every acknowledged ciphertext
// decrypts on every node. Then a third-party plugin (the chacha example)
// is registered on the running cluster, pinned by its checksum, and used.
func TestClusterPluginsOutOfProcess(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{size: 3, pluginDirs: true})
	for _, n := range c.nodes {
		testwait.Within(t, leaderWait, n.nodeID+"'s bolt and soft plugin processes", func() bool {
			return pluginPid(n, "bolt") != 0 && pluginPid(n, "soft") != 0
		})

	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := runCLI(ctx, c.nodes[1].addr, c.root, "plugin", "list", "-format=json")
	if err != nil {
		t.Fatalf("keyraft plugin list: %v\n%s", err, out)
	}
	var catalog struct {
		Detailed []struct {
			Name, Type, SHA256 string
			Builtin, Running   bool
		}
	}
	if err := json.Unmarshal([]byte(out), &catalog); err != nil {
		t.Fatalf("plugin list output: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, p := range catalog.Detailed {
		if len(p.SHA256) != 64 || !p.Builtin {
			t.Fatalf("catalog entry %+v", p)
		}
		seen[p.Type+"/"+p.Name] = true
	}
	if !seen["storage/bolt"] || !seen["crypto/soft"] || !seen["crypto/pkcs11"] {
		t.Fatalf("catalog = %s", out)
	}

	leader := c.leader()
	if _, err := leader.client(c.root).Logical().Write("transit/keys/app", nil); err != nil {
		t.Fatal(err)
	}
	type ack struct{ ct, pt string }
	var (
		mu       sync.Mutex
		acks     []ack
		failures []string
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for i, n := range c.nodes {
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := n.client(c.root)
				for j := 0; ; j++ {
					select {
					case <-stop:
						return
					default:
					}
					pt := b64([]byte(fmt.Sprintf("msg %d/%d/%d", i, w, j)))
					s, err := cl.Logical().Write("transit/encrypt/app", map[string]any{"plaintext": pt})
					mu.Lock()
					if err != nil {
						failures = append(failures, n.nodeID+": "+err.Error())
					} else {
						acks = append(acks, ack{s.Data["ciphertext"].(string), pt})
					}
					mu.Unlock()
				}
			}()
		}
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acks) }
	testwait.Within(t, leaderWait, "load before the kill", func() bool { return count() > 100 })
	pid := pluginPid(leader, "soft")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testwait.Within(t, leaderWait, "the leader's soft plugin to be restarted", func() bool {
		p := pluginPid(leader, "soft")
		return p != 0 && p != pid
	})

	before := count()
	testwait.Within(t, leaderWait, "load after the restart", func() bool { return count() > before+100 })
	close(stop)
	wg.Wait()
	if !leader.running() {
		t.Fatal("the node died with its plugin")
	}
	for _, f := range failures {
		if !strings.HasPrefix(f, leader.nodeID+": ") || !strings.Contains(f, "Code: 503") || !strings.Contains(f, `crypto backend "soft"`) {
			t.Fatalf("a failure that is not a 503 of the killed plugin on its node: %s", f)
		}
	}
	t.Logf("%d acknowledged encryptions, %d failed by the SIGKILL", len(acks), len(failures))
	for i, a := range acks {
		if i%7 != 0 { // a sample keeps the check quick; every node decrypts each sampled one
			continue
		}
		for _, n := range c.nodes {
			s, err := n.client(c.root).Logical().Write("transit/decrypt/app", map[string]any{"ciphertext": a.ct})
			if err != nil || s.Data["plaintext"] != a.pt {
				t.Fatalf("acknowledged ciphertext %d does not decrypt on %s: %v", i, n.nodeID, err)
			}
		}
	}

	// The state store of a follower dies: Raft entries wait for the
	// restarted plugin instead of failing, and nothing is lost.
	var follower *node
	for _, n := range c.nodes {
		if n != leader {
			follower = n
		}
	}
	boltPid := pluginPid(follower, "bolt")
	if err := syscall.Kill(boltPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("after-bolt-kill-%d", i)
		if _, err := c.nodes[i%3].client(c.root).Logical().Write("transit/keys/"+name, nil); err != nil {
			t.Fatalf("create %s after the storage plugin was killed: %v", name, err)
		}
	}
	testwait.Within(t, leaderWait, follower.nodeID+"'s storage plugin to be restarted", func() bool {
		p := pluginPid(follower, "bolt")
		return p != 0 && p != boltPid
	})

	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("after-bolt-kill-%d", i)
		testwait.Within(t, leaderWait, name+" on "+follower.nodeID, func() bool {
			_, err := follower.client(c.root).Logical().Read("transit/keys/" + name)
			return err == nil
		})

	}
	if !follower.running() {
		t.Fatal("the node died with its storage plugin")
	}

	// A third-party plugin, registered on the running cluster.
	bin := filepath.Join(t.TempDir(), "keyraft-plugin-chacha")
	build := exec.Command("go", "build", "-o", bin, "./plugins/examples/chacha")
	build.Dir = mustModuleRoot(t)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example plugin: %v\n%s", err, b)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		if err := os.WriteFile(filepath.Join(n.pluginDir, "keyraft-plugin-chacha"), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err = runCLI(ctx, c.nodes[2].addr, c.root, "plugin", "test", "-type=crypto", bin)
	if err != nil || !strings.Contains(out, "checks passed") {
		t.Fatalf("keyraft plugin test on the example: %v\n%s", err, out)
	}
	wrong := strings.Repeat("ab", 32)
	out, err = runCLI(ctx, c.nodes[2].addr, c.root, "plugin", "register", "-type=crypto", "-sha256="+wrong, "-command=keyraft-plugin-chacha", "chacha")
	if err == nil || !strings.Contains(out, "sha256 mismatch") || !strings.Contains(out, "hint:") {
		t.Fatalf("registering with a wrong checksum: %v\n%s", err, out)
	}
	sum := sha256File(t, bin)
	out, err = runCLI(ctx, c.nodes[2].addr, c.root, "plugin", "register", "-type=crypto", "-sha256="+sum, "-command=keyraft-plugin-chacha", "-version=v0.1.0", "chacha")
	if err != nil {
		t.Fatalf("keyraft plugin register: %v\n%s", err, out)
	}
	out, err = runCLI(ctx, c.nodes[1].addr, c.root, "keys", "create", "-type=chacha20-poly1305", "-backend=chacha", "on-chacha")
	if err != nil {
		t.Fatalf("keys create -backend=chacha: %v\n%s", err, out)
	}
	s, err := c.nodes[0].client(c.root).Logical().Write("transit/encrypt/on-chacha", map[string]any{"plaintext": b64([]byte("third party"))})
	if err != nil {
		t.Fatalf("encrypt on the example plugin: %v", err)
	}
	for _, n := range c.nodes {
		d, err := n.client(c.root).Logical().Write("transit/decrypt/on-chacha", map[string]any{"ciphertext": s.Data["ciphertext"]})
		if err != nil || d.Data["plaintext"] != b64([]byte("third party")) {
			t.Fatalf("decrypt on %s through the example plugin: %v", n.nodeID, err)
		}
		if pluginPid(n, "chacha") == 0 {
			t.Fatalf("%s does not run the example plugin as a child process", n.nodeID)
		}
	}
	if k := read(t, c.nodes[2].client(c.root), "transit/keys/on-chacha"); k["backend"] != "chacha" {
		t.Fatalf("key info: %v", k)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

func mustModuleRoot(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
