package catalog

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/internal/plugintest"
	"github.com/keyraft/keyraft/plugins/sdk"
)

// softCatalog builds the real soft plugin into a plugin directory and
// returns a manager whose catalog holds it under "soft-ext".
type softCatalog struct {
	dir string
	mu  sync.Mutex
	e   Entry
}

func (c *softCatalog) lookup(typ, name string) (*Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if typ != TypeCrypto || name != c.e.Name {
		return nil, ErrNotFound
	}
	e := c.e
	return &e, nil
}

func (c *softCatalog) update(fn func(e *Entry)) {
	c.mu.Lock()
	fn(&c.e)
	c.mu.Unlock()
}

func newSoftManager(t *testing.T) (*Manager, *softCatalog) {
	t.Helper()
	dir := t.TempDir()
	bin, sum := plugintest.Build(t, dir, "github.com/keyraft/keyraft/cmd/keyraft-plugin-soft")
	c := &softCatalog{dir: dir, e: Entry{Name: "soft-ext", Type: TypeCrypto, Command: filepath.Base(bin), SHA256: hex.EncodeToString(sum)}}
	m := NewManager(ManagerConfig{Dir: dir, Lookup: c.lookup, Logger: plugintest.Logger(t, nil), Default: "soft-ext"})
	t.Cleanup(m.Close)
	return m, c
}

func roundTrip(t *testing.T, b sdk.CryptoBackend) {
	t.Helper()
	ctx := context.Background()
	g, err := b.Generate(ctx, sdk.KeyAES256GCM96)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	ref := sdk.KeyRef{Handle: g.Handle, Material: g.Material}
	enc, err := b.Encrypt(ctx, []sdk.EncryptItem{{Key: ref, Plaintext: []byte("hello"), AssocData: []byte("ad")}})
	if err != nil || enc[0].Err != nil {
		t.Fatalf("Encrypt: %v %v", err, enc)
	}
	dec, err := b.Decrypt(ctx, []sdk.DecryptItem{{Key: ref, Ciphertext: enc[0].Ciphertext, AssocData: []byte("ad")}})
	if err != nil || dec[0].Err != nil || string(dec[0].Plaintext) != "hello" {
		t.Fatalf("Decrypt: %v %+v", err, dec)
	}
}

func pidOf(t *testing.T, m *Manager, name string) int {
	t.Helper()
	st := m.Status()[name]
	if !st.Running || st.Pid == 0 {
		t.Fatalf("plugin %s not running: %+v", name, st)
	}
	return st.Pid
}

func TestManagerStartsOnFirstUseAndSurvivesSIGKILL(t *testing.T) {
	m, _ := newSoftManager(t)
	if _, ok := m.Status()["soft-ext"]; ok {
		t.Fatal("plugin started before first use")
	}
	if m.DefaultBackend() != "soft-ext" {
		t.Fatalf("DefaultBackend = %q", m.DefaultBackend())
	}
	b, err := m.Crypto(context.Background(), "soft-ext")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, b)
	pid := pidOf(t, m, "soft-ext")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The host restarts it; a later call is served by the new process
	// (a call racing the crash may fail with a clear crash error).
	testwait.Within(t, 10*time.Second, "the condition", func() bool {
		st := m.Status()["soft-ext"]
		return st.Running && st.Pid != pid
	})

	b2, err := m.Crypto(context.Background(), "soft-ext")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, b2)
	if st := m.Status()["soft-ext"]; st.Restarts < 1 {
		t.Fatalf("restarts = %d after SIGKILL", st.Restarts)
	}
}

func TestManagerRestartsWhenTheEntryChanges(t *testing.T) {
	m, c := newSoftManager(t)
	if _, err := m.Crypto(context.Background(), "soft-ext"); err != nil {
		t.Fatal(err)
	}
	pid := pidOf(t, m, "soft-ext")
	c.update(func(e *Entry) { e.Generation++ }) // keyraft plugin reload
	b, err := m.Crypto(context.Background(), "soft-ext")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, b)
	if pidOf(t, m, "soft-ext") == pid {
		t.Fatal("reload did not start a new process")
	}
	// The old process is stopped.
	testwait.Within(t, 10*time.Second, "the condition", func() bool { return syscall.Kill(pid, 0) != nil })
}

func TestManagerRefusesAWrongChecksumAndStaysUsable(t *testing.T) {
	m, c := newSoftManager(t)
	c.update(func(e *Entry) { e.SHA256 = "00" + e.SHA256[2:] })
	_, err := m.Crypto(context.Background(), "soft-ext")
	if !errors.Is(err, host.ErrChecksumMismatch) {
		t.Fatalf("err = %v, want ErrChecksumMismatch", err)
	}
	if st := m.Status()["soft-ext"]; st.Running || st.Error == "" {
		t.Fatalf("status after a refused start = %+v", st)
	}
	// Fixing the entry (re-register with the right sum) starts it.
	bin := filepath.Join(c.dir, c.e.Command)
	sum, err := FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	c.update(func(e *Entry) { e.SHA256 = sum })
	b, err := m.Crypto(context.Background(), "soft-ext")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, b)
}

func TestManagerTamperedBinaryIsRefusedAtRestart(t *testing.T) {
	m, c := newSoftManager(t)
	b, err := m.Crypto(context.Background(), "soft-ext")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, b)
	pid := pidOf(t, m, "soft-ext")
	// Someone replaces the binary, then the process dies: the host must
	// not start the new file.
	bin := filepath.Join(c.dir, c.e.Command)
	data, _ := os.ReadFile(bin)
	os.Remove(bin)
	if err := os.WriteFile(bin, append(data, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	ctx := context.Background()
	g, gerr := b.Generate(ctx, sdk.KeyAES256GCM96)
	if gerr == nil {
		t.Fatalf("a tampered binary served Generate: %x", g.Handle)
	}
	testwait.Within(t, 10*time.Second, "the condition", func() bool { return m.Status()["soft-ext"].Pid == 0 })
}

func TestManagerUnknownAndForgotten(t *testing.T) {
	m, _ := newSoftManager(t)
	if _, err := m.Crypto(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown backend: err = %v, want ErrNotFound", err)
	}
	if _, err := m.Crypto(context.Background(), "soft-ext"); err != nil {
		t.Fatal(err)
	}
	pid := pidOf(t, m, "soft-ext")
	m.Forget("soft-ext")
	testwait.Within(t, 10*time.Second, "the condition", func() bool { return syscall.Kill(pid, 0) != nil })
	m.Close()
	if _, err := m.Crypto(context.Background(), "soft-ext"); !errors.Is(err, ErrManagerClosed) {
		t.Fatalf("after Close: err = %v", err)
	}
}

// Many concurrent requests through the coalescing manager all get their
// own answers from the real plugin.
func TestManagerConcurrentRequests(t *testing.T) {
	m, _ := newSoftManager(t)
	ctx := context.Background()
	b, err := m.Crypto(ctx, "soft-ext")
	if err != nil {
		t.Fatal(err)
	}
	g, err := b.Generate(ctx, sdk.KeyAES256GCM96)
	if err != nil {
		t.Fatal(err)
	}
	ref := sdk.KeyRef{Handle: g.Handle, Material: g.Material}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := []byte{byte(i), 1, 2, 3}
			enc, err := b.Encrypt(ctx, []sdk.EncryptItem{{Key: ref, Plaintext: msg}})
			if err != nil || enc[0].Err != nil {
				errs <- errors.Join(err, enc[0].Err)
				return
			}
			dec, err := b.Decrypt(ctx, []sdk.DecryptItem{{Key: ref, Ciphertext: enc[0].Ciphertext}})
			if err != nil || dec[0].Err != nil || string(dec[0].Plaintext) != string(msg) {
				errs <- errors.New("round trip mismatch")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// An entry removed through another node stops the plugin here at its
// next use.
func TestManagerStopsAPluginDeregisteredElsewhere(t *testing.T) {
	m, c := newSoftManager(t)
	if _, err := m.Crypto(context.Background(), "soft-ext"); err != nil {
		t.Fatal(err)
	}
	pid := pidOf(t, m, "soft-ext")
	c.update(func(e *Entry) { e.Name = "renamed" }) // "soft-ext" is gone from the catalog
	if _, err := m.Crypto(context.Background(), "soft-ext"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	testwait.Within(t, 10*time.Second, "the condition", func() bool { return syscall.Kill(pid, 0) != nil })
	if _, ok := m.Status()["soft-ext"]; ok {
		t.Fatal("a deregistered plugin is still listed as running")
	}
}
