package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/internal/plugintest"
	"github.com/keyraft/keyraft/plugins/sdk"
)

var (
	binDir   string
	binMu    sync.Mutex
	binPaths = map[string]string{}
	binSums  = map[string][]byte{}
)

// binary builds a main package once for the package's tests.
func binary(t testing.TB, pkg string) (string, []byte) {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binPaths[pkg]; ok {
		return p, binSums[pkg]
	}
	p, sum := plugintest.Build(t, binDir, pkg)
	binPaths[pkg], binSums[pkg] = p, sum
	return p, sum
}

func boltBinary(t testing.TB) (string, []byte) {
	return binary(t, "github.com/keyraft/keyraft/cmd/keyraft-plugin-bolt")
}

func startBolt(t testing.TB, dbPath string, edit func(*host.Config)) (*host.Client, *plugintest.SyncBuffer) {
	t.Helper()
	bin, sum := boltBinary(t)
	logs := &plugintest.SyncBuffer{}
	cfg := host.Config{
		Name:       "bolt",
		Command:    bin,
		Args:       []string{"-path", dbPath},
		SHA256:     sum,
		Logger:     plugintest.Logger(t, logs),
		Timeout:    5 * time.Second,
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := host.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, logs
}

// helperConfig runs this test binary as a misbehaving plugin (mode: see
// helper_test.go).
func helperConfig(t *testing.T, mode string, logs *plugintest.SyncBuffer) host.Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return host.Config{
		Name:       "helper",
		Command:    exe,
		Env:        []string{helperEnv + "=" + mode, helperDBEnv + "=" + filepath.Join(t.TempDir(), "state.db")},
		SHA256:     plugintest.Sum(t, exe),
		Logger:     plugintest.Logger(t, logs),
		Timeout:    5 * time.Second,
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
	}
}

func startHelper(t *testing.T, mode string, edit func(*host.Config)) (*host.Client, *plugintest.SyncBuffer) {
	t.Helper()
	logs := &plugintest.SyncBuffer{}
	cfg := helperConfig(t, mode, logs)
	if edit != nil {
		edit(&cfg)
	}
	c, err := host.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, logs
}

func put(k, v string) plugins.Mutation {
	return plugins.Mutation{Kind: plugins.Put, Key: []byte(k), Value: []byte(v)}
}

// waitUp waits until the plugin answers again after a restart.
func waitUp(t *testing.T, s plugins.Storage) {
	t.Helper()
	testwait.Within(t, time.Minute, "the plugin back up", func() bool {
		_, err := s.Get([]byte("probe"))
		return err == nil
	})
}

func kill9(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("no plugin pid (%d)", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestPluginLogsReachTheNodeLogUnderItsName(t *testing.T) {
	c, logs := startHelper(t, "storage", nil)
	if _, err := c.Storage().Get([]byte("print")); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "a line on stderr after the handshake")
	out := logs.String()
	for _, want := range []string{
		"node.helper: a line on stdout after the handshake",
		"node.helper: a line on stderr after the handshake",
		"node.helper: plugin started",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("node log lacks %q", want)
		}
	}
}

func TestBoltPluginServesAndPersistsAcrossRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	c, logs := startBolt(t, db, nil)
	s := c.Storage()
	if err := s.Write([]plugins.Mutation{put("a", "1"), put("b", "2")}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "node.bolt: serving bolt storage") {
		t.Errorf("the plugin's own log line is not in the node log under its name:\n%s", logs.String())
	}
	pid := c.Pid()
	c.Close()
	if _, err := s.Get([]byte("a")); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	testwait.Within(t, 30*time.Second, fmt.Sprintf("plugin pid %d gone after Close", pid), func() bool { return !alive(pid) })
	c2, _ := startBolt(t, db, nil)
	if v, err := c2.Storage().Get([]byte("b")); err != nil || string(v) != "2" {
		t.Fatalf("after restart Get(b) = %q, %v", v, err)
	}
}

func TestChecksumMismatchIsRefused(t *testing.T) {
	bin, sum := boltBinary(t)
	wrong := bytes.Clone(sum)
	wrong[0] ^= 0xff
	_, err := host.Start(context.Background(), host.Config{
		Name: "bolt", Command: bin, Args: []string{"-path", filepath.Join(t.TempDir(), "db")},
		SHA256: wrong, Logger: plugintest.Logger(t, nil),
	})
	if !errors.Is(err, host.ErrChecksumMismatch) {
		t.Fatalf("Start with a wrong checksum: %v, want ErrChecksumMismatch", err)
	}
	for _, want := range []string{fmt.Sprintf("%x", sum), fmt.Sprintf("%x", wrong), bin} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	t.Log(err)
}

// The checksum is checked again at every restart: a binary swapped while
// the plugin runs is refused when the plugin restarts, and accepted again
// once the pinned binary is back (which also shows that each start hashes
// with a new hash object).
func TestChecksumCheckedAtEveryRestart(t *testing.T) {
	orig, sum := boltBinary(t)
	bin := filepath.Join(t.TempDir(), "keyraft-plugin-bolt")
	good, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, good, 0o755); err != nil {
		t.Fatal(err)
	}
	c, logs := startBolt(t, filepath.Join(t.TempDir(), "state.db"), func(cfg *host.Config) {
		cfg.Command = bin
		cfg.SHA256 = sum
		cfg.Timeout = 500 * time.Millisecond
	})
	s := c.Storage()
	for i := 0; i < 3; i++ { // three restarts with the right binary
		kill9(t, c.Pid())
		waitUp(t, s)
	}
	// Swap the binary (a rename, as an installer would), then crash the plugin.
	if err := os.WriteFile(bin+".new", append(bytes.Clone(good), 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	kill9(t, c.Pid())
	waitLog(t, logs, "checksum mismatch")
	_, err = s.Get([]byte("x"))
	if !errors.Is(err, host.ErrPluginUnavailable) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("Get while the swapped binary is refused: %v, want ErrPluginUnavailable naming the checksum mismatch", err)
	}
	if err := os.WriteFile(bin+".new", good, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	waitUp(t, s)
	if n := c.Restarts(); n != 4 {
		t.Fatalf("Restarts = %d, want 4", n)
	}
}

// SIGKILL while a unary call is in flight: that call fails with
// ErrPluginCrashed, promptly; the plugin restarts; the next calls work.
func TestSIGKILLMidCall(t *testing.T) {
	c, logs := startHelper(t, "storage", nil)
	s := c.Storage()
	if err := s.Write([]plugins.Mutation{put("k", "v")}); err != nil {
		t.Fatal(err)
	}
	pid := c.Pid()
	errc := make(chan error, 1)
	go func() {
		_, err := s.Get([]byte("slow")) // answers after 3s
		errc <- err
	}()
	waitLog(t, logs, "slow get started") // the call is in flight
	start := time.Now()
	kill9(t, pid)
	select {
	case err := <-errc:
		if !errors.Is(err, host.ErrPluginCrashed) {
			t.Fatalf("call in flight during SIGKILL: %v, want ErrPluginCrashed", err)
		}
		t.Logf("in-flight call failed after %v: %v", time.Since(start), err)
	case <-time.After(2500 * time.Millisecond):
		t.Fatal("call in flight did not fail within 2.5s of the SIGKILL")
	}
	waitUp(t, s)
	if v, err := s.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("after restart Get = %q, %v", v, err)
	}
	if c.Pid() == pid || c.Restarts() != 1 {
		t.Fatalf("pid %d -> %d, restarts %d", pid, c.Pid(), c.Restarts())
	}
	if !strings.Contains(logs.String(), "plugin process exited; restarting it") {
		t.Error("the crash is not in the node log")
	}
}

// SIGKILL of the real bolt plugin in the middle of a streamed scan.
func TestSIGKILLMidScanRealPlugin(t *testing.T) {
	c, _ := startBolt(t, filepath.Join(t.TempDir(), "state.db"), nil)
	s := c.Storage()
	var batch []plugins.Mutation
	for i := 0; i < 20000; i++ {
		batch = append(batch, put(fmt.Sprintf("k/%06d", i), strings.Repeat("v", 100)))
	}
	if err := s.Write(batch); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := s.Scan([]byte("k/"), func(k, v []byte) error {
		n++
		if n == 10 {
			kill9(t, c.Pid())
		}
		return nil
	})
	if !errors.Is(err, host.ErrPluginCrashed) {
		t.Fatalf("scan during SIGKILL: %v (after %d keys), want ErrPluginCrashed", err, n)
	}
	if n >= 20000 {
		t.Fatalf("scan saw all %d keys although the plugin was killed", n)
	}
	waitUp(t, s)
	n = 0
	if err := s.Scan([]byte("k/"), func(k, v []byte) error { n++; return nil }); err != nil || n != 20000 {
		t.Fatalf("scan after restart: %d keys, %v", n, err)
	}
}

// Writers keep going while the real bolt plugin is killed twice: writes
// in flight fail with a clear error, none hangs, later ones succeed, and
// every acknowledged write is there afterwards.
func TestSIGKILLDuringWritesRealPlugin(t *testing.T) {
	c, _ := startBolt(t, filepath.Join(t.TempDir(), "state.db"), nil)
	s := c.Storage()
	var (
		mu    sync.Mutex
		acked []string
		fails []error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d/%05d", w, i)
				err := s.Write([]plugins.Mutation{put(k, k)})
				mu.Lock()
				if err == nil {
					acked = append(acked, k)
				} else {
					fails = append(fails, err)
				}
				mu.Unlock()
			}
		}()
	}
	// Each kill lands while writes are going on: wait for 20 more
	// acknowledged writes before each kill and before stopping.
	moreAcked := func() {
		t.Helper()
		mu.Lock()
		from := len(acked)
		mu.Unlock()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= from+20 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("writes stalled at %d acknowledged", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for round := 0; round < 2; round++ {
		moreAcked()
		kill9(t, c.Pid())
		waitUp(t, s)
	}
	moreAcked()
	close(stop)
	wg.Wait()
	for _, err := range fails {
		if !errors.Is(err, host.ErrPluginCrashed) && !errors.Is(err, host.ErrPluginUnavailable) {
			t.Errorf("write failed with %v, want ErrPluginCrashed or ErrPluginUnavailable", err)
		}
	}
	for _, k := range acked {
		if v, err := s.Get([]byte(k)); err != nil || string(v) != k {
			t.Fatalf("acknowledged write %s: Get = %q, %v", k, v, err)
		}
	}
	t.Logf("%d writes acknowledged and present, %d failed during the kills", len(acked), len(fails))
	if c.Restarts() != 2 {
		t.Fatalf("restarts = %d, want 2", c.Restarts())
	}
}

func TestHangingCallTimesOut(t *testing.T) {
	c, _ := startHelper(t, "storage", func(cfg *host.Config) { cfg.Timeout = 500 * time.Millisecond })
	s := c.Storage()
	start := time.Now()
	_, err := s.Get([]byte("hang"))
	took := time.Since(start)
	if !errors.Is(err, host.ErrPluginTimeout) {
		t.Fatalf("hanging Get: %v, want ErrPluginTimeout", err)
	}
	if took < 450*time.Millisecond || took > 3*time.Second {
		t.Fatalf("hanging Get returned after %v, want about the 500ms timeout", took)
	}
	if !strings.Contains(err.Error(), `plugin "helper": Get: plugin call timed out after 500ms`) {
		t.Errorf("error text: %q", err)
	}
	// A hung handler does not make the plugin unusable.
	if err := s.Write([]plugins.Mutation{put("a", "1")}); err != nil {
		t.Fatalf("Write after a timeout: %v", err)
	}
	// A caller's own deadline is honoured too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Crypto().Capabilities(ctx); err == nil {
		t.Fatal("crypto call on a storage-only plugin succeeded")
	}
}

// A scan's timeout is per wait for the plugin: a hanging scan times out,
// a slow callback in a healthy scan does not.
func TestScanTimeoutCountsOnlyThePlugin(t *testing.T) {
	c, _ := startHelper(t, "storage", func(cfg *host.Config) { cfg.Timeout = 400 * time.Millisecond })
	s := c.Storage()
	err := s.Scan([]byte("hang"), func(k, v []byte) error { return nil })
	if !errors.Is(err, host.ErrPluginTimeout) {
		t.Fatalf("hanging scan: %v, want ErrPluginTimeout", err)
	}
	if err := s.Write([]plugins.Mutation{put("s/a", "1"), put("s/b", "2")}); err != nil {
		t.Fatal(err)
	}
	n := 0
	err = s.Scan([]byte("s/"), func(k, v []byte) error {
		n++
		time.Sleep(600 * time.Millisecond) // longer than the timeout, on our side
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("scan with a slow callback: %d keys, %v", n, err)
	}
}

func TestHangingStartTimesOut(t *testing.T) {
	cfg := helperConfig(t, "nohandshake", nil)
	cfg.StartTimeout = 700 * time.Millisecond
	start := time.Now()
	_, err := host.Start(context.Background(), cfg)
	if !errors.Is(err, host.ErrStartFailed) || !strings.Contains(err.Error(), "no handshake within the start timeout") {
		t.Fatalf("Start of a plugin that never shakes hands: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestGarbageOnStdoutBeforeHandshake(t *testing.T) {
	_, err := host.Start(context.Background(), helperConfig(t, "garbage", nil))
	if !errors.Is(err, host.ErrStartFailed) {
		t.Fatalf("Start: %v, want ErrStartFailed", err)
	}
	if !strings.Contains(err.Error(), "bad handshake") || !strings.Contains(err.Error(), "Hello! I am definitely a plugin") {
		t.Fatalf("error does not say what went wrong: %v", err)
	}
	t.Log(err)
}

func TestPluginExitingBeforeHandshake(t *testing.T) {
	logs := &plugintest.SyncBuffer{}
	_, err := host.Start(context.Background(), helperConfig(t, "exit", logs))
	if !errors.Is(err, host.ErrStartFailed) {
		t.Fatalf("Start: %v, want ErrStartFailed", err)
	}
	if !strings.Contains(logs.String(), "helper: refusing to start") {
		t.Errorf("the plugin's last words are not in the node log")
	}
	// ... nor only there: the caller (an API client) sees no node log.
	if !strings.Contains(err.Error(), "the plugin exited before its handshake: helper: refusing to start") {
		t.Errorf("the error does not say why: %v", err)
	}
}

// TestStartErrorIsRedacted: the cause a plugin gives is its last error
// line's message and error, without its other fields, the secrets it was
// given or what looks like key material.
func TestStartErrorIsRedacted(t *testing.T) {
	cfg := helperConfig(t, "exitsecret", nil)
	cfg.Env = append(cfg.Env, "KEYRAFT_HSM_PIN=4321-secret")
	_, err := host.Start(context.Background(), cfg)
	if !errors.Is(err, host.ErrStartFailed) {
		t.Fatalf("Start: %v, want ErrStartFailed", err)
	}
	want := "the plugin exited before its handshake: opening the token with PIN [redacted]: CKR_PIN_INCORRECT for key [redacted]"
	if !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error %q\nwant it to end in %q", err, want)
	}
	for _, leak := range []string{"4321-secret", "TOPSECRETPLAINTEXT", "c2VjcmV0S2V5"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("the error leaks %q: %v", leak, err)
		}
	}
}

func TestNotAPlugin(t *testing.T) {
	// /bin/true is a program, not a plugin: it exits without a handshake.
	sum := plugintest.Sum(t, "/bin/true")
	_, err := host.Start(context.Background(), host.Config{Name: "true", Command: "/bin/true", SHA256: sum})
	if !errors.Is(err, host.ErrStartFailed) {
		t.Fatalf("Start(/bin/true): %v", err)
	}
}

func TestPanickingPluginDoesNotTakeTheNodeDown(t *testing.T) {
	c, logs := startHelper(t, "storage", nil)
	s := c.Storage()
	_, err := s.Get([]byte("panic"))
	if !errors.Is(err, host.ErrPluginCrashed) {
		t.Fatalf("Get that panics the plugin: %v, want ErrPluginCrashed", err)
	}
	waitUp(t, s)
	if !strings.Contains(logs.String(), "helper plugin: asked to panic") {
		t.Error("the plugin's panic is not in the node log")
	}
}

func TestOutOfContractScansAreRejected(t *testing.T) {
	for _, mode := range []string{"disorder", "escape"} {
		t.Run(mode, func(t *testing.T) {
			c, _ := startHelper(t, mode, nil)
			s := c.Storage()
			if err := s.Write([]plugins.Mutation{put("p/a", "1"), put("p/b", "2")}); err != nil {
				t.Fatal(err)
			}
			err := s.Scan([]byte("p/"), func(k, v []byte) error { return nil })
			if !errors.Is(err, sdk.ErrProtocol) {
				t.Fatalf("scan: %v, want ErrProtocol", err)
			}
			t.Log(err)
			if c.Restarts() != 0 {
				t.Fatal("a protocol error restarted the plugin")
			}
		})
	}
}

func TestViewLostWhenPluginRestarts(t *testing.T) {
	c, _ := startBolt(t, filepath.Join(t.TempDir(), "state.db"), nil)
	s := c.Storage()
	if err := s.Write([]plugins.Mutation{put("a", "1")}); err != nil {
		t.Fatal(err)
	}
	v, err := s.View()
	if err != nil {
		t.Fatal(err)
	}
	kill9(t, c.Pid())
	waitUp(t, s)
	if _, err := v.Get([]byte("a")); !errors.Is(err, host.ErrViewLost) {
		t.Fatalf("view Get after restart: %v, want ErrViewLost", err)
	}
	if err := v.Scan(nil, func(k, v []byte) error { return nil }); !errors.Is(err, host.ErrViewLost) {
		t.Fatalf("view Scan after restart: %v, want ErrViewLost", err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("closing a lost view: %v", err)
	}
	v2, err := s.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if got, err := v2.Get([]byte("a")); err != nil || string(got) != "1" {
		t.Fatalf("new view Get = %q, %v", got, err)
	}
}

func TestCallsWaitForTheRestart(t *testing.T) {
	c, _ := startBolt(t, filepath.Join(t.TempDir(), "state.db"), func(cfg *host.Config) {
		cfg.MinBackoff = 500 * time.Millisecond
		cfg.MaxBackoff = 500 * time.Millisecond
	})
	s := c.Storage()
	kill9(t, c.Pid())
	// Pid 0: the host has seen the exit, the plugin is down.
	testwait.Within(t, 30*time.Second, "the host to notice the SIGKILL", func() bool { return c.Pid() == 0 })
	// Down for ~500ms: this call waits for the new process instead of failing.
	if err := s.Write([]plugins.Mutation{put("a", "1")}); err != nil {
		t.Fatalf("Write during the restart: %v", err)
	}
}

// A write that times out may still be pending inside the plugin; the
// process is stopped so it cannot land after the caller's retry (the
// storage of a node retries every failed write).
func TestTimedOutWriteStopsThePlugin(t *testing.T) {
	c, _ := startHelper(t, "storage", func(cfg *host.Config) { cfg.Timeout = 500 * time.Millisecond })
	s := c.Storage()
	pid := c.Pid()
	err := s.Write([]plugins.Mutation{put("slow-write", "stale")})
	if !errors.Is(err, host.ErrPluginTimeout) {
		t.Fatalf("slow write: %v, want ErrPluginTimeout", err)
	}
	// Stopped with the timeout; gone once reaped (a busy machine takes
	// its time).
	testwait.Within(t, 30*time.Second, "the plugin process gone after a timed-out write", func() bool {
		return syscall.Kill(pid, 0) != nil
	})
	// The next write goes to a new process (once it is up: on a busy
	// machine the restart takes a while, and the node's durable storage
	// retries meanwhile); the stale one never lands.
	waitUp(t, s)
	if err := s.Write([]plugins.Mutation{put("after", "fresh")}); err != nil {
		t.Fatalf("write after the restart: %v", err)
	}
	if v, err := s.Get([]byte("slow-write")); err != nil || v != nil {
		t.Fatalf("the timed-out write landed: %q, %v", v, err)
	}
	if c.Pid() == pid {
		t.Fatal("same pid after the restart")
	}
}

// waitLog waits until the node's log (where plugin lines land) holds s.
func waitLog(t *testing.T, logs *plugintest.SyncBuffer, s string) {
	t.Helper()
	testwait.Within(t, time.Minute, fmt.Sprintf("log line %q", s), func() bool { return strings.Contains(logs.String(), s) })
}

// A frozen plugin (SIGSTOP, a dead disk) never answers a polite shutdown:
// a write that times out on it still returns, the process is killed, and
// the next write goes to a new process.
func TestWriteToAFrozenPluginReturns(t *testing.T) {
	c, _ := startHelper(t, "storage", func(cfg *host.Config) { cfg.Timeout = 500 * time.Millisecond })
	s := c.Storage()
	pid := c.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Write([]plugins.Mutation{put("k", "v")}) }()
	select {
	case err := <-done:
		if !errors.Is(err, host.ErrPluginTimeout) {
			t.Fatalf("write to a frozen plugin: %v, want ErrPluginTimeout", err)
		}
	case <-time.After(30 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatal("a write to a frozen plugin did not return")
	}
	waitUp(t, s)
	if c.Pid() == pid {
		t.Fatal("the frozen process is still the plugin")
	}
	if err := s.Write([]plugins.Mutation{put("k", "v2")}); err != nil {
		t.Fatalf("write after the restart: %v", err)
	}
}
