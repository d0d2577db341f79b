package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/keyraft/keyraft/internal/testwait"
)

// collector is a real `keyraft audit receive` process.
type collector struct {
	t      *testing.T
	addr   string
	path   string
	cmd    *exec.Cmd
	exited chan struct{}
}

func startCollector(t *testing.T, addr, path string) *collector {
	t.Helper()
	c := &collector{t: t, addr: addr, path: path}
	c.start()
	t.Cleanup(func() {
		if c.running() {
			c.cmd.Process.Signal(syscall.SIGCONT)
			c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

func (c *collector) start() {
	c.t.Helper()
	errLog, err := os.OpenFile(c.path+".stderr", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	c.cmd = exec.Command(keyraftBin, "audit", "receive", "-listen", c.addr, "-o", c.path)
	c.cmd.Stderr = errLog
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	errLog.Close()
	c.exited = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.exited) }()
	testwait.Within(c.t, 30*time.Second, "the collector to listen", func() bool {
		b, _ := os.ReadFile(c.path + ".stderr")
		return bytes.Count(b, []byte("listening on")) > 0 && c.running()
	})

}

// connections counts the sink connections the collector has answered.
func (c *collector) connections() int {
	b, _ := os.ReadFile(c.path + ".stderr")
	return bytes.Count(b, []byte("sink connected"))
}

func (c *collector) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

func (c *collector) kill() {
	c.cmd.Process.Kill()
	<-c.exited
}

// linePos is one line of a sink's file: nil when the line is not a whole
// event.
type linePos struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// readSinkFile reads every line of a JSON-lines audit file and fails the
// test on a torn or foreign line.
func readSinkFile(t *testing.T, path string) []linePos {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s ends in a torn line", filepath.Base(path))
	}
	var out []linePos
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var p linePos
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil || p.Seq == 0 || p.Hash == "" {
			t.Fatalf("%s: line %d is not a whole event: %q", filepath.Base(path), len(out)+1, sc.Text())
		}
		out = append(out, p)
	}
	return out
}

func lastSeq(path string) uint64 {
	b, _ := os.ReadFile(path)
	b = bytes.TrimRight(b, "\n")
	var p linePos
	json.Unmarshal(b[bytes.LastIndexByte(b, '\n')+1:], &p)
	return p.Seq
}

// logPositions reads the cluster's log (seq and hash) through seq to.
func logPositions(t *testing.T, c *vault.Client, to uint64) []linePos {
	t.Helper()
	var out []linePos
	from := uint64(1)
	for from <= to {
		s, err := c.Logical().ReadWithData("sys/audit/events", map[string][]string{"from_seq": {fmt.Sprint(from)}, "limit": {"10000"}})
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := s.Data["events"].([]any)
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			m := e.(map[string]any)
			seq := jsonInt(m["seq"])
			if uint64(seq) > to {
				return out
			}
			out = append(out, linePos{Seq: uint64(seq), Hash: m["hash"].(string)})
		}
		from = uint64(num(t, s.Data, "next_seq"))
	}
	return out
}

// sameAsLog fails unless the sink's lines are exactly the log's events
// 1..len, each once, in order, with the log's hashes.
func sameAsLog(t *testing.T, what string, got, want []linePos) {
	t.Helper()
	if len(got) < len(want) {
		t.Fatalf("%s holds %d events, the log %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s line %d is seq %d %.12s…, the log's event is seq %d %.12s…", what, i+1, got[i].Seq, got[i].Hash, want[i].Seq, want[i].Hash)
		}
	}
	for i := len(want); i < len(got); i++ {
		if got[i].Seq != got[i-1].Seq+1 {
			t.Fatalf("%s line %d: seq %d after %d", what, i+1, got[i].Seq, got[i-1].Seq)
		}
	}
}

// TestAuditSinkExactlyOnceThroughFaults: a cluster-wide socket device on
// 3 real nodes, delivered to a real collector process, under encrypt load
// from every node, while the collector stalls (SIGSTOP past the write
// timeout), dies (SIGKILL) and comes back, and the leader is killed (a
// leader change; the new leader resumes from what the collector says it
// stored). Afterwards the collector holds every event of the log exactly
// once, in order, whole, with the log's hashes — no duplicates from the
// three nodes, none from the failover.
func TestAuditSinkExactlyOnceThroughFaults(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{size: 3})
	root := c.leader().client(c.root)
	dir := t.TempDir()
	col := startCollector(t, fmt.Sprintf("127.0.0.1:%d", freePort(t)), filepath.Join(dir, "collected.jsonl"))
	if _, err := root.Logical().Write("sys/audit/collector", map[string]any{"type": "socket",
		"options": map[string]string{"address": col.addr, "write_timeout": "1s"}}); err != nil {
		t.Fatal(err)
	}
	write(t, root, "transit/keys/sinks", map[string]any{})

	var stop atomic.Bool
	var acked atomic.Int64
	// down marks a node the test has killed; the load goroutines read it
	// instead of the harness's process state, which start rewrites.
	down := make([]atomic.Bool, len(c.nodes))
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := c.nodes[i%len(c.nodes)]
			isDown := &down[i%len(c.nodes)]
			cl := n.client(c.root)
			cl.SetClientTimeout(10 * time.Second)
			for j := 0; !stop.Load() && j < 20000; j++ {
				if isDown.Load() {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if _, err := cl.Logical().Write("transit/encrypt/sinks", map[string]any{"plaintext": b64([]byte("x"))}); err == nil {
					acked.Add(1)
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	progress := func(what string) {
		t.Helper()
		at := acked.Load()
		testwait.Within(t, 60*time.Second, what, func() bool { return acked.Load() >= at+300 })
	}
	progress("load to start")
	testwait.Within(t, 60*time.Second, "the collector to receive events", func() bool { return lastSeq(col.path) > 100 })

	// Stall past the write timeout: the sink resets and retries; requests go on.
	col.cmd.Process.Signal(syscall.SIGSTOP)
	progress("requests during the stall")
	testwait.Within(t, 60*time.Second, "the leader's sink to give up on the stalled collector", func() bool {
		l, err := c.leader().client(c.root).Logical().Read("sys/audit")
		if err != nil {
			return false
		}
		d, _ := l.Data["collector/"].(map[string]any)["delivery"].(map[string]any)
		e, _ := d["last_error"].(string)
		return strings.Contains(e, "acknowledged nothing") || strings.Contains(e, "did not answer")
	})

	progress("requests while the collector is stalled")
	conns := col.connections()
	col.cmd.Process.Signal(syscall.SIGCONT)
	testwait.Within(t, 60*time.Second, "the sink to reconnect after the stall", func() bool { return col.connections() > conns })
	progress("requests after the stall")

	// Collector death and restart: what it stored is what it says on reconnect.
	col.kill()
	progress("requests while the collector is down")
	conns = col.connections()
	col.start()
	testwait.Within(t, 60*time.Second, "the sink to reconnect to the restarted collector", func() bool { return col.connections() > conns })

	// Leader change.
	leader := c.leader()
	li := slices.Index(c.nodes, leader)
	down[li].Store(true)
	leader.kill()
	newLeader := c.leader()
	progress("requests after the leader change")
	leader.start()
	leader.unseal(c.shares[0], c.shares[1])
	down[li].Store(false)
	progress("requests with the old leader back")
	stop.Store(true)
	wg.Wait()

	cl := newLeader.client(c.root)
	s, err := cl.Logical().ReadWithData("sys/audit/events", map[string][]string{"limit": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	head := uint64(num(t, s.Data["head"].(map[string]any), "seq"))
	testwait.Within(t, 90*time.Second, "the collector to catch up", func() bool { return lastSeq(col.path) >= head })
	want := logPositions(t, cl, head)
	sameAsLog(t, "the collector's file", readSinkFile(t, col.path), want)
	t.Logf("%d encrypts acknowledged; the collector holds events 1..%d exactly once", acked.Load(), head)
	// The faults happened: the sink reconnected, and after the leader
	// change another node delivered.
	stderr, _ := os.ReadFile(col.path + ".stderr")
	senders := map[string]bool{}
	for _, line := range strings.Split(string(stderr), "\n") {
		if _, rest, ok := strings.Cut(line, "sink connected:"); ok {
			for _, f := range strings.Fields(rest) {
				if v, ok := strings.CutPrefix(f, "node="); ok {
					senders[v] = true
				}
			}
		}
	}
	if conns := strings.Count(string(stderr), "sink connected"); conns < 4 || !senders[newLeader.nodeID] || !senders[leader.nodeID] {
		t.Fatalf("the collector saw %d connections from %v; want reconnects from the old leader %s and the new %s", conns, senders, leader.nodeID, newLeader.nodeID)
	}
	t.Logf("collector connections: %d, from %v", strings.Count(string(stderr), "sink connected"), senders)

	// sys/audit on the leader shows who delivers it, and no lag once caught up.
	list, err := cl.Logical().Read("sys/audit")
	if err != nil {
		t.Fatal(err)
	}
	d := list.Data["collector/"].(map[string]any)["delivery"].(map[string]any)
	if d["cluster_wide"] != true || d["delivering"] != true {
		t.Fatalf("the leader's view of the device: %v", d)
	}
	// The committed cursor lets compaction go up to what was delivered.
	testwait.Within(t, 30*time.Second, "the device's cursor to be committed", func() bool {
		l, err := c.nodes[0].client(c.root).Logical().Read("sys/audit")
		if err != nil {
			return false
		}
		d := l.Data["collector/"].(map[string]any)["delivery"].(map[string]any)
		return jsonInt(d["delivered_seq"]) >= int64(head)
	})

}

// TestAuditFileSinkOnAFullDisk: a node's config file device on a small
// tmpfs that fills up under load: the requests go on, the device reports
// the error and its lag, nothing torn is left in the file, and once space
// is freed it catches up with every event exactly once, in order.
func TestAuditFileSinkOnAFullDisk(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	logPath := filepath.Join(mnt, "audit.jsonl")
	n := newConfigNodeWith(t, "")
	n.topHCL = fmt.Sprintf("audit \"file\" {\n  name = \"small\"\n  path = %q\n}\n", logPath)
	n.pickPorts()
	n.start()
	shares, _, root := n.initNode(1, 1)
	n.unseal(shares[0])
	c := n.client(root)
	write(t, c, "transit/keys/full", map[string]any{})
	delivery := func() map[string]any {
		l, err := c.Logical().Read("sys/audit")
		if err != nil {
			t.Fatal(err)
		}
		return l.Data["small/"].(map[string]any)["delivery"].(map[string]any)
	}
	// Fill the disk: requests keep being answered.
	for i := 0; ; i++ {
		if i > 20000 {
			t.Fatal("the 512 KiB file system never filled up")
		}
		encrypt(t, c, "full", []byte("fill"))
		if i%200 == 0 {
			if e, _ := delivery()["last_error"].(string); strings.Contains(e, "no space left") {
				break
			}
		}
	}
	for i := 0; i < 200; i++ {
		encrypt(t, c, "full", []byte("while full"))
	}
	d := delivery()
	if lag := jsonInt(d["lag_events"]); lag < 200 {
		t.Fatalf("a full device reports a lag of %d events: %v", lag, d)
	}
	readSinkFile(t, logPath) // whole lines only, even now

	if out, err := exec.Command("mount", "-o", "remount,size=64m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	s, err := c.Logical().ReadWithData("sys/audit/events", map[string][]string{"limit": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	head := uint64(num(t, s.Data["head"].(map[string]any), "seq"))
	testwait.Within(t, 60*time.Second, "the file device to catch up", func() bool { return lastSeq(logPath) >= head })
	sameAsLog(t, "the file", readSinkFile(t, logPath), logPositions(t, c, head))
}

func jsonInt(v any) int64 {
	n, _ := v.(json.Number)
	i, _ := n.Int64()
	return i
}

// TestCleanStopKeepsEncryptionCounts: the encryptions answered since the
// last periodic flush are committed when the node stops on SIGTERM, so a
// version's count toward its nonce budget survives a clean restart.
func TestCleanStopKeepsEncryptionCounts(t *testing.T) {
	t.Parallel()
	n := newConfigNode(t)
	n.start()
	shares, _, root := n.initNode(1, 1)
	n.unseal(shares[0])
	c := n.client(root)
	write(t, c, "transit/keys/counted", map[string]any{})
	for i := 0; i < 60; i++ {
		encrypt(t, c, "counted", []byte("x"))
	}
	if code := n.stop(); code != 0 {
		t.Fatalf("keyraft exited %d on SIGTERM", code)
	}
	n.start()
	n.unseal(shares[0])
	k := read(t, n.client(root), "transit/keys/counted")
	counts, _ := k["encryptions"].(map[string]any)
	if got := jsonInt(counts["1"]); got != 60 {
		t.Fatalf("version 1 counts %d encryptions after a clean restart, want 60 (%v)", got, k["encryptions"])
	}
}
