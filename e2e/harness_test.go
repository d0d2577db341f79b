// Package e2e tests real keyraft processes: it builds the binary once,
// starts nodes on 127.0.0.1 ports, kills them with SIGKILL or stops them
// with SIGTERM, and checks afterwards what they acknowledged.
//
// Every wait is a poll on a condition with a deadline; nothing sleeps and
// hopes. The logs of every process go to files in the test's temp
// directory and are printed when the test fails.
//
// KEYRAFT_E2E_BIN=/path/to/keyraft tests that binary instead of building
// one. Under -race the binary is built with -race too, and a data race
// the server reports fails the test that ran it.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/keyraft/keyraft/internal/testwait"
)

// keyraftBin is the binary under test, built once by TestMain.
var keyraftBin string

// Deadlines. They bound how long a broken server can stall a test; none
// is an assertion about speed.
const (
	startDeadline = 60 * time.Second // process start until the API answers
	stopDeadline  = 30 * time.Second // SIGTERM until the process is gone
	leaderWait    = 60 * time.Second // until the node is Raft leader
	pollEvery     = 20 * time.Millisecond
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	if bin := os.Getenv("KEYRAFT_E2E_BIN"); bin != "" {
		// Test a binary built elsewhere (another commit, a release build).
		keyraftBin = bin
		return m.Run()
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: finding the module root: %v\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "keyraft-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "keyraft")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		// The tests run with -race: build the server with it too, so that
		// a data race under real traffic shows in its log (see checkLogs).
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/keyraft")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/keyraft: %v\n%s", err, out)
		return 1
	}
	keyraftBin = bin
	return m.Run()
}

// moduleRoot is the directory of the go.mod this package belongs to.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			return filepath.Dir(mod), nil
		}
	}
	// Fall back to the layout of the repository: e2e/ is beside go.mod.
	abs, aerr := filepath.Abs("..")
	if aerr != nil {
		return "", aerr
	}
	if _, serr := os.Stat(filepath.Join(abs, "go.mod")); serr != nil {
		return "", fmt.Errorf("no go.mod from 'go env GOMOD' (%v) nor in %s", err, abs)
	}
	return abs, nil
}

// freePort returns a 127.0.0.1 port that was free (TCP and UDP) a moment
// ago, below the kernel's ephemeral range (32768 and up): a node restarts
// on the same ports, and the source port of some unrelated outgoing
// connection must not have taken its port meanwhile.
//
// Ports 26000-31999 are this package's (the cluster package's tests use
// 20000-25999 at the same time); none is handed out twice.
var handedOut sync.Map

func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 1000; i++ {
		port := 26000 + mathrand.IntN(6000)
		if _, dup := handedOut.LoadOrStore(port, true); dup {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
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
		return port
	}
	t.Fatal("no free port in 26000-31999")
	return 0
}

// node is one keyraft server process, restartable on the same data dir
// (and, for config nodes, the same ports).
type node struct {
	t       *testing.T
	dir     string // the node's own temp dir: config, logs, data
	dataDir string // the storage path (config nodes)
	config  string // path of the HCL file (config nodes)
	dev     bool
	extra   []string // more server flags, e.g. -log-level
	storage string   // more arguments of the storage "raft" block
	topHCL  string   // more top-level HCL (e.g. audit blocks)
	listen  string   // more arguments of the listener "tcp" block (HCL)
	nodeID  string   // Raft node ID (default n1)
	// bindIP is the loopback IP of the cluster and gossip ports (default
	// 127.0.0.1); clusterAdvertise, when set, is the cluster_addr peers
	// dial (a fault proxy in front of the cluster port).
	bindIP           string
	clusterAdvertise string
	gossipPort       int
	seal             string   // the seal block (default: seal "shamir" {})
	env              []string // more environment, e.g. SOFTHSM2_CONF
	noWait           bool     // launch returns once the process runs
	devCluster       int      // with dev: run -dev-cluster N instead of -dev
	pluginDir        string   // plugin_directory, when the node has one

	apiPort, clusterPort int
	addr                 string // http://127.0.0.1:PORT once known

	starts int
	logs   []string // every stdout and stderr file, in start order
	cmd    *exec.Cmd
	exited chan struct{} // closed when the running process has been reaped
	// groups are the process groups of every start: the server and its
	// plugin processes, which cleanup kills together (a plugin that
	// outlives a killed server would write into the test's directory).
	groups []int
	state  *os.ProcessState
}

// newConfigNode prepares (does not start) a node that reads an HCL
// config: raft storage in its temp dir, a plain-HTTP listener and a
// cluster listener on free 127.0.0.1 ports.
func newConfigNode(t *testing.T, extraFlags ...string) *node {
	t.Helper()
	return newConfigNodeWith(t, "", extraFlags...)
}

// newConfigNodeWith is newConfigNode with more arguments for the storage
// "raft" block (one per line, HCL).
func newConfigNodeWith(t *testing.T, storage string, extraFlags ...string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, dir: dir, dataDir: filepath.Join(dir, "data"), config: filepath.Join(dir, "keyraft.hcl"), extra: extraFlags, storage: storage}
	n.pickPorts()
	t.Cleanup(n.cleanup)
	return n
}

// newDevNode prepares a -dev node on a port the OS picks; its address is
// read from the banner.
func newDevNode(t *testing.T, extraFlags ...string) *node {
	t.Helper()
	n := &node{t: t, dir: t.TempDir(), dev: true, extra: extraFlags}
	t.Cleanup(n.cleanup)
	return n
}

func (n *node) pickPorts() {
	used := map[int]bool{}
	pick := func() int {
		for {
			if p := freePort(n.t); !used[p] {
				used[p] = true
				return p
			}
		}
	}
	n.apiPort, n.clusterPort, n.gossipPort = pick(), pick(), pick()
	n.addr = fmt.Sprintf("http://127.0.0.1:%d", n.apiPort)
	n.writeNodeConfig()
}

// writeNodeConfig writes the node's HCL from its fields.
func (n *node) writeNodeConfig() {
	id, ip := n.nodeID, n.bindIP
	if id == "" {
		id = "n1"
	}
	if ip == "" {
		ip = "127.0.0.1"
	}
	top := n.topHCL
	if n.clusterAdvertise != "" {
		top += fmt.Sprintf("\ncluster_addr = \"https://%s\"\n", n.clusterAdvertise)
	}
	n.writeConfig(fmt.Sprintf(`# written by the e2e harness
storage "raft" {
  path           = %q
  node_id        = %q
  gossip_address = "%s:%d"
%s
}

listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "%s:%d"
  tls_disable     = true
%s
}
api_addr = "http://127.0.0.1:%d"
%s
%s
`, n.dataDir, id, ip, n.gossipPort, n.storage, n.apiPort, ip, n.clusterPort, n.listen, n.apiPort, n.seal, top))
}

func (n *node) writeConfig(hcl string) {
	n.t.Helper()
	if err := os.WriteFile(n.config, []byte(hcl), 0o600); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) args() []string {
	if n.dev && n.devCluster > 0 {
		return append([]string{"server", fmt.Sprintf("-dev-cluster=%d", n.devCluster), "-dev-listen-address=127.0.0.1:0"}, n.extra...)
	}
	if n.dev {
		return append([]string{"server", "-dev", "-dev-listen-address=127.0.0.1:0"}, n.extra...)
	}
	return append([]string{"server", "-config", n.config}, n.extra...)
}

// start launches the process and waits until its API answers
// /v1/sys/seal-status. On the first start of a config node a port taken in
// the meantime by someone else is retried with new ports.
func (n *node) start() {
	n.t.Helper()
	for attempt := 0; ; attempt++ {
		err := n.launch()
		if err == nil {
			return
		}
		if n.starts == 1 && !n.dev && attempt < 3 && n.logContains(n.logs[len(n.logs)-1], "address already in use") {
			n.t.Logf("port taken, retrying with new ports: %v", err)
			n.logs = n.logs[:len(n.logs)-2]
			n.starts = 0
			n.pickPorts()
			continue
		}
		n.t.Fatalf("starting keyraft (%s): %v", strings.Join(n.args(), " "), err)
	}
}

func (n *node) launch() error {
	if n.running() {
		return errors.New("harness: node already running")
	}
	n.starts++
	stdoutPath := filepath.Join(n.dir, fmt.Sprintf("stdout.%d.log", n.starts))
	stderrPath := filepath.Join(n.dir, fmt.Sprintf("stderr.%d.log", n.starts))
	stdout, err := os.Create(stdoutPath)
	if err != nil {
		return err
	}
	defer stdout.Close()
	stderr, err := os.Create(stderrPath)
	if err != nil {
		return err
	}
	defer stderr.Close()
	n.logs = append(n.logs, stdoutPath, stderrPath)

	cmd := exec.Command(keyraftBin, n.args()...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Dir = n.dir
	// A clean environment: no VAULT_* or KEYRAFT_* of the developer's, and
	// the dev data dir under the test's temp dir (TMPDIR), so that the
	// test can see it removed.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + n.dir, "TMPDIR=" + n.dir}, n.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	n.cmd = cmd
	n.groups = append(n.groups, cmd.Process.Pid)
	n.exited = make(chan struct{})
	n.state = nil
	go func(cmd *exec.Cmd, exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(cmd, n.exited)

	if n.noWait {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), startDeadline)
	defer cancel()
	if n.dev {
		addr, err := n.waitBanner(ctx, stdoutPath)
		if err != nil {
			return err
		}
		n.addr = addr
	}
	return n.waitAPI(ctx)
}

var bannerAddr = regexp.MustCompile(`export KEYRAFT_ADDR='([^']+)'`)

// waitBanner polls the dev node's stdout for the KEYRAFT_ADDR line.
func (n *node) waitBanner(ctx context.Context, stdoutPath string) (string, error) {
	return poll(ctx, n.exited, func() (string, bool) {
		b, _ := os.ReadFile(stdoutPath)
		if m := bannerAddr.FindSubmatch(b); m != nil {
			return string(m[1]), true
		}
		return "", false
	})
}

// waitAPI polls /v1/sys/seal-status until it answers 200.
func (n *node) waitAPI(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	_, err := poll(ctx, n.exited, func() (struct{}, bool) {
		resp, err := hc.Get(n.addr + "/v1/sys/seal-status")
		if err != nil {
			return struct{}{}, false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return struct{}{}, resp.StatusCode == http.StatusOK
	})
	return err
}

// poll calls cond every pollEvery until it reports done, ctx ends or
// exited closes (the process died).
func poll[T any](ctx context.Context, exited <-chan struct{}, cond func() (T, bool)) (T, error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if v, ok := cond(); ok {
			return v, nil
		}
		select {
		case <-ctx.Done():
			var zero T
			return zero, fmt.Errorf("condition not met: %w", ctx.Err())
		case <-exited:
			if v, ok := cond(); ok {
				return v, nil
			}
			var zero T
			return zero, errors.New("the keyraft process exited")
		case <-t.C:
		}
	}
}

func (n *node) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits until the process is reaped.
func (n *node) kill() {
	n.t.Helper()
	if !n.running() {
		n.t.Fatal("harness: kill: the node is not running")
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
	n.state = n.cmd.ProcessState
}

// stop sends SIGTERM and waits for the process to exit, at most
// stopDeadline; it returns the exit code. A node that does not stop in time
// is killed and the test fails.
func (n *node) stop() int {
	n.t.Helper()
	if !n.running() {
		n.t.Fatal("harness: stop: the node is not running")
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(stopDeadline):
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
		n.t.Fatalf("keyraft did not exit within %v of SIGTERM", stopDeadline)
	}
	n.state = n.cmd.ProcessState
	return n.state.ExitCode()
}

// cleanup kills a process still running, checks the logs for panics and
// data races, and prints the logs when the test failed.
func (n *node) cleanup() {
	if n.running() {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
	for _, g := range n.groups {
		syscall.Kill(-g, syscall.SIGKILL)
		// Dead once no member runs (a zombie writes nothing; its reaping
		// is its new parent's business).
		if !testwait.Poll(10*time.Second, func() bool { return !groupRuns(g) }) {
			n.t.Logf("harness: process group %d still runs 10 s after SIGKILL", g)
		}
	}
	n.checkLogs()
	if n.t.Failed() {
		n.dumpLogs()
	}
}

// groupRuns reports whether a process of group g is alive and not a
// zombie (from /proc: the fields after the command are state, ppid, pgrp).
func groupRuns(g int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(g) {
			return true
		}
	}
	return false
}

// checkLogs fails the test when a process log shows a panic, a fatal Go
// runtime error or a data race.
func (n *node) checkLogs() {
	for _, p := range n.logs {
		b, _ := os.ReadFile(p)
		for _, bad := range []string{"WARNING: DATA RACE", "panic: ", "fatal error: ", "goroutine 1 ["} {
			if bytes.Contains(b, []byte(bad)) {
				n.t.Errorf("%s contains %q", filepath.Base(p), bad)
				break
			}
		}
	}
}

// dumpLogs prints the end of every log file of the node.
func (n *node) dumpLogs() {
	const max = 48 << 10
	for _, p := range n.logs {
		b, err := os.ReadFile(p)
		if err != nil {
			n.t.Logf("--- %s: %v", p, err)
			continue
		}
		cut := ""
		if len(b) > max {
			b, cut = b[len(b)-max:], " (last 48 KiB)"
		}
		n.t.Logf("--- %s%s:\n%s", filepath.Base(p), cut, b)
	}
}

func (n *node) logContains(path, s string) bool {
	b, _ := os.ReadFile(path)
	return bytes.Contains(b, []byte(s))
}

// stdoutLines returns the lines of the stdout of the latest start.
func (n *node) stdoutLines() []string {
	if len(n.logs) < 2 {
		return nil
	}
	f, err := os.Open(n.logs[len(n.logs)-2])
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	return lines
}

// client returns a github.com/hashicorp/vault/api client for the node,
// unmodified except that it does not retry (a 503 is an answer to check,
// not to hide) and sends token (none when empty).
func (n *node) client(token string) *vault.Client {
	n.t.Helper()
	cfg := vault.DefaultConfig()
	if cfg.Error != nil {
		n.t.Fatal(cfg.Error)
	}
	cfg.Address = n.addr
	cfg.MaxRetries = 0
	cfg.Timeout = 30 * time.Second
	c, err := vault.NewClient(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	c.ClearToken()
	if token != "" {
		c.SetToken(token)
	}
	return c
}

// waitLeader waits until the node reports itself Raft leader through
// /v1/sys/leader (it answers while sealed).
func (n *node) waitLeader() {
	n.t.Helper()
	c := n.client("")
	testwait.Within(n.t, leaderWait, "the node to become leader", func() bool {
		l, err := c.Sys().Leader()
		return err == nil && l.IsSelf
	})

}

// initNode initializes a fresh node with shares/threshold and returns the
// shares (base64 and hex) and the root token; the node stays sealed. It
// sends only the two fields, not the vault client's full InitRequest, so
// that tests other than the vault/api one do not depend on how the server
// takes the client's empty optional fields.
func (n *node) initNode(shares, threshold int) (keysB64 []string, keysHex []string, root string) {
	n.t.Helper()
	// A fresh node belongs to no cluster: init makes it the first voter.
	body, _ := json.Marshal(map[string]int{"secret_shares": shares, "secret_threshold": threshold})
	resp, err := http.Post(n.addr+"/v1/sys/init", "application/json", bytes.NewReader(body))
	if err != nil {
		n.t.Fatalf("sys/init: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Keys      []string `json:"keys"`
		KeysB64   []string `json:"keys_base64"`
		RootToken string   `json:"root_token"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		n.t.Fatalf("sys/init: status %d: %s", resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		n.t.Fatalf("sys/init: %v", err)
	}
	if len(out.KeysB64) != shares || len(out.Keys) != shares || out.RootToken == "" {
		n.t.Fatalf("sys/init answered %d base64 keys, %d hex keys, a root token: %v", len(out.KeysB64), len(out.Keys), out.RootToken != "")
	}
	return out.KeysB64, out.Keys, out.RootToken
}

// unseal gives the node the shares in order and checks the progress after
// each; the last one must unseal it.
func (n *node) unseal(shares ...string) {
	n.t.Helper()
	c := n.client("")
	for i, s := range shares {
		st, err := c.Sys().Unseal(s)
		// A restarted node answers 503 until it has applied the Raft log it
		// had at start; the share was not taken, so give it again.
		deadline := time.Now().Add(30 * time.Second)
		for err != nil && isStatus(err, 503) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			st, err = c.Sys().Unseal(s)
		}
		if err != nil {
			n.t.Fatalf("sys/unseal share %d: %v", i+1, err)
		}
		last := i == len(shares)-1
		switch {
		case last && st.Sealed:
			n.t.Fatalf("still sealed after %d shares (threshold %d, progress %d)", len(shares), st.T, st.Progress)
		case !last && (!st.Sealed || st.Progress != i+1):
			n.t.Fatalf("after share %d: sealed=%v progress=%d, want sealed with progress %d", i+1, st.Sealed, st.Progress, i+1)
		case last && st.Progress != 0:
			n.t.Errorf("unsealed with progress %d, want 0", st.Progress)
		}
	}
}

// isStatus reports whether err is a Vault API response error with code.
func isStatus(err error, code int) bool {
	var re *vault.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}

// startAll restarts nodes at once: a node of a cluster answers (and
// records) requests only with a quorum, so waiting for each in turn
// would wait forever for the first.
func startAll(t *testing.T, nodes []*node) {
	t.Helper()
	for _, n := range nodes {
		n.noWait = true
		err := n.launch()
		n.noWait = false
		if err != nil {
			t.Fatalf("starting %s: %v", n.nodeID, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startDeadline)
	defer cancel()
	for _, n := range nodes {
		if err := n.waitAPI(ctx); err != nil {
			t.Fatalf("%s did not answer after the restart: %v", n.nodeID, err)
		}
	}
}
