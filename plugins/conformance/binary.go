package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/sdk"
)

// The kinds of plugin RunBinary checks.
const (
	KindStorage = "storage"
	KindCrypto  = "crypto"
)

// DirPlaceholder, in an argument of RunBinary, is replaced by a new
// empty directory for every launch of a storage plugin, so that each
// check starts from an empty store: for example
// []string{"-path", "{{dir}}/state.db"}.
const DirPlaceholder = "{{dir}}"

// ErrUnknownKind is returned by RunBinary for a kind other than
// KindStorage and KindCrypto.
var ErrUnknownKind = errors.New("conformance: kind must be storage or crypto")

// restartWait bounds the wait for the host to restart a killed plugin.
const restartWait = 60 * time.Second

// RunBinary runs every contract check of kind against the plugin binary
// at binaryPath, started as a node starts it: through plugins/host, with
// its SHA-256 computed here and pinned, over mutual TLS, with args as its
// arguments and this process's environment added to the host's minimal
// one (so KEYRAFT_HSM_PIN=... in front of the command reaches the
// plugin). It writes a PASS, FAIL or SKIP line per check to out (with the
// reasons of a failure indented below it, and the plugin's warnings and
// errors), then a summary, and returns how many checks failed.
//
// A crypto plugin is started once for all checks. A storage plugin is
// started afresh for every check, with DirPlaceholder in args replaced by
// a new empty directory (without it every check would share one store
// and fail). On top of the contract checks that TestStorage and
// TestCrypto run, the binary is killed with SIGKILL once: a storage
// plugin must still hold what it acknowledged, and the keys of a crypto
// plugin that keeps its material must still work after the restart.
//
// err is for what prevents the run (unknown kind, unreadable binary);
// a plugin that does not start is a failed check.
func RunBinary(ctx context.Context, kind, binaryPath string, args []string, out io.Writer) (failed int, err error) {
	if kind != KindStorage && kind != KindCrypto {
		return 0, fmt.Errorf("%w, not %q", ErrUnknownKind, kind)
	}
	path, err := filepath.Abs(binaryPath)
	if err != nil {
		return 0, fmt.Errorf("conformance: %w", err)
	}
	sum, err := fileSum(path)
	if err != nil {
		return 0, fmt.Errorf("conformance: reading the plugin binary: %w", err)
	}
	rep := &report{out: out}
	rep.line("plugin %s (sha256 %x), %s contract", path, sum, kind)
	if kind == KindStorage && !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, DirPlaceholder) }) {
		rep.line("note: no argument contains %s, so every check opens the same store; checks that need an empty store will fail", DirPlaceholder)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: lockedWriter{rep}})
	b := binary{ctx: ctx, path: path, sum: sum, args: args, logger: logger}

	root := &runner{rep: rep}
	root.Run(kind, func(t T) {
		switch kind {
		case KindStorage:
			runStorage(t, func(t T) plugins.Storage { return b.start(t, t.TempDir()).Storage() })
			t.Run("DurableAcrossCrash", b.storageDurable)
			t.Run("CompactLeavesNoDeletedValue", b.storageCompactFiles)
		case KindCrypto:
			c := b.start(t, "")
			runCrypto(t, func(T) sdk.CryptoBackend { return c.Crypto() })
			t.Run("KeysSurviveCrash", func(t T) { cryptoSurvivesCrash(t, c) })
		}
	})
	if rep.failed > 0 {
		rep.line("FAIL: %d check(s) failed, %d passed", rep.failed, rep.passed)
	} else {
		rep.line("ok: %d checks passed", rep.passed)
	}
	return rep.failed, nil
}

// lockedWriter writes the plugin's log lines between the check lines.
type lockedWriter struct{ rep *report }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.rep.mu.Lock()
	defer w.rep.mu.Unlock()
	return w.rep.out.Write(p)
}

type binary struct {
	ctx    context.Context
	path   string
	sum    []byte
	args   []string
	logger hclog.Logger
}

// start launches the plugin with dir in place of DirPlaceholder and
// stops it when t's check ends.
func (b binary) start(t T, dir string) *host.Client {
	t.Helper()
	args := make([]string, len(b.args))
	for i, a := range b.args {
		args[i] = strings.ReplaceAll(a, DirPlaceholder, dir)
	}
	c, err := host.Start(b.ctx, host.Config{
		Name:       filepath.Base(b.path),
		Command:    b.path,
		Args:       args,
		Env:        os.Environ(),
		SHA256:     b.sum,
		Logger:     b.logger,
		MinBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("starting the plugin: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// storageDurable writes, kills the plugin and reads back through the
// restarted process.
func (b binary) storageDurable(t T) {
	c := b.start(t, t.TempDir())
	s := c.Storage()
	write(t, s, put("durable/a", "1"), put("durable/b", "2"))
	killAndWait(t, c)
	for _, k := range []string{"durable/a", "durable/b"} {
		v, err := s.Get([]byte(k))
		if err != nil {
			t.Fatalf("Get(%q) after the plugin was killed and restarted: %v", k, err)
		}
		if v == nil {
			t.Errorf("%q, written before the plugin was killed, is gone after its restart", k)
		}
	}
}

// cryptoSurvivesCrash checks that a backend that keeps material still
// has a key after a SIGKILL and restart: the node stores only handles.
func cryptoSurvivesCrash(t T, c *host.Client) {
	ctx := context.Background()
	b := c.Crypto()
	caps, err := b.Capabilities(ctx)
	if err != nil {
		t.Fatalf("Capabilities: %v", err)
	}
	if !caps.KeepsMaterial {
		t.Skip("the backend keeps no key material: nothing to survive")
	}
	type probe struct {
		u   usage
		ref sdk.KeyRef
	}
	var probes []probe
	for _, kt := range caps.KeyTypes {
		if u := usageOf(kt); u != "" {
			probes = append(probes, probe{u, ref(generate(t, b, caps, kt))})
		}
	}
	killAndWait(t, c)
	for _, p := range probes {
		errs, err := use(ctx, b, p.u, []sdk.KeyRef{p.ref}, distinctMsgs(1, 16))
		if err == nil {
			err = errs[0]
		}
		if err != nil {
			t.Errorf("%s with a key made before the plugin was killed: %v", p.u, err)
		}
		if err := b.Destroy(ctx, p.ref); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	}
}

// killAndWait kills the plugin process with SIGKILL and waits until the
// host runs a new one.
func killAndWait(t T, c *host.Client) {
	t.Helper()
	pid := c.Pid()
	if pid == 0 {
		t.Fatal("the plugin is not running")
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("killing the plugin (pid %d): %v", pid, err)
	}
	deadline := time.Now().Add(restartWait)
	for {
		if n := c.Pid(); n != 0 && n != pid {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host did not restart the plugin within %s of its SIGKILL", restartWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileSum(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// storageCompactFiles: after Compact, no file of the store holds a value
// that was deleted or overwritten ("destroyed means gone").
func (b binary) storageCompactFiles(t T) {
	dir := t.TempDir()
	s := b.start(t, dir).Storage()
	c := compactor(t, s)
	mark := make([]byte, 16)
	_, _ = rand.Read(mark)
	marker := fmt.Sprintf("DESTROYED-%x", mark)
	// Records big enough to fill pages of their own, then deleted and
	// overwritten: a store that keeps freed space has them in its files.
	var batch []plugins.Mutation
	for i := 0; i < 50; i++ {
		v := strings.Repeat(fmt.Sprintf("%s-%03d;", marker, i), 40)
		batch = append(batch, put(fmt.Sprintf("del/%03d", i), v), put(fmt.Sprintf("over/%03d", i), v))
	}
	write(t, s, batch...)
	write(t, s, plugins.Mutation{Kind: plugins.DeletePrefix, Key: []byte("del/")})
	batch = batch[:0]
	for i := 0; i < 50; i++ {
		batch = append(batch, put(fmt.Sprintf("over/%03d", i), "live"))
	}
	write(t, s, batch...)
	if err := c.Compact(); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(marker)) {
			t.Errorf("after Compact, %s still holds a deleted or overwritten value", path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the store's files: %v", err)
	}
}
