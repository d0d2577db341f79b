package host_test

import (
	"bufio"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/plugins/bolt"
)

// running reports whether pid is a live process (a zombie waiting for
// its new parent to reap it counts as gone).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// When the node is killed with SIGKILL, its storage plugin exits too and
// releases the store, so that the restarted node can open it.
func TestPluginExitsWhenTheNodeDies(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	bin, sum := boltBinary(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "state.db")
	node := exec.Command(exe)
	node.Env = append(os.Environ(), helperEnv+"=fakenode", helperDBEnv+"="+db,
		"KEYRAFT_HOST_TEST_BIN="+bin, "KEYRAFT_HOST_TEST_SUM="+hex.EncodeToString(sum))
	out, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Process.Kill(); node.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("fake node: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("fake node said %q", line)
	}
	if !running(pid) {
		t.Fatalf("plugin %d not running", pid)
	}
	node.Process.Kill()
	node.Wait()
	if !testwait.Poll(30*time.Second, func() bool { return !running(pid) }) {
		syscallKill(pid)
		t.Fatalf("plugin %d still running 30 s after its node was killed", pid)
	}
	s, err := bolt.Open(db)
	if err != nil {
		t.Fatalf("the store is still locked after the plugin exited: %v", err)
	}
	s.Close()
}

func syscallKill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}
