package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cryptoki "github.com/miekg/pkcs11"

	"github.com/keyraft/keyraft/internal/pkcs11/softhsm"
	"github.com/keyraft/keyraft/internal/testwait"
)

// These tests run against real SoftHSM2 tokens made per test.

const testPIN = "1234"

func open(t *testing.T, cfg Config, rw bool) *Token {
	t.Helper()
	tok, err := Open(cfg, rw)
	if err != nil {
		t.Fatalf("Open(%v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := tok.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tok
}

func noModules(t *testing.T, when string) {
	t.Helper()
	if n := LoadedModules(); n != 0 {
		t.Fatalf("%s: %d modules still loaded", when, n)
	}
}

// Every way Open can fail has its sentinel and the dialect's name, no
// PIN, and leaves no module loaded.
func TestOpenErrors(t *testing.T) {
	h := softhsm.New(t)
	const pin, wrongPIN = "Pin-51c0ffee", "Wrong-9d52ff30"
	h.Token("errs", pin)
	h.Token("twin", pin)
	h.Token("twin", pin)
	base := Config{Lib: h.Lib, TokenLabel: "errs", PIN: pin, Dialect: testDialect}
	notLib := filepath.Join(t.TempDir(), "junk.so")
	if err := os.WriteFile(notLib, []byte("not a shared library"), 0o600); err != nil {
		t.Fatal(err)
	}
	slot := uint(987654)
	cases := []struct {
		name string
		mut  func(*Config)
		want error
		says string
	}{
		{"invalid", func(c *Config) { c.TokenLabel = "" }, ErrConfig, "-token-label"},
		{"no module", func(c *Config) { c.Lib = "/nonexistent/lib.so" }, ErrModule, "/nonexistent/lib.so"},
		{"module is a directory", func(c *Config) { c.Lib = t.TempDir() }, ErrModule, "is a directory"},
		{"not a library", func(c *Config) { c.Lib = notLib }, ErrModule, "dlopen failed"},
		{"no such label", func(c *Config) { c.TokenLabel = "other" }, ErrToken, `no initialized token labelled "other" (tokens: `},
		{"no such slot", func(c *Config) { c.TokenLabel, c.Slot = "", &slot }, ErrToken, "slot 987654 has no token"},
		{"two tokens, one label", func(c *Config) { c.TokenLabel = "twin" }, ErrToken, "configure -slot instead"},
		{"wrong PIN", func(c *Config) { c.PIN = wrongPIN }, ErrPIN, "incorrect PIN"},
		{"no PIN file", func(c *Config) { c.PIN, c.PINFile = "", "/nonexistent/pin" }, ErrConfig, "PIN file"},
	}
	for _, tc := range cases {
		cfg := base
		tc.mut(&cfg)
		tok, err := Open(cfg, false)
		if err == nil {
			tok.Close()
			t.Fatalf("%s: Open succeeded", tc.name)
		}
		if !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "pkcs11 test: ") || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v; want %v saying %q", tc.name, err, tc.want, tc.says)
		}
		if strings.Contains(err.Error(), pin) || strings.Contains(err.Error(), wrongPIN) {
			t.Errorf("%s: the error shows the PIN: %v", tc.name, err)
		}
		noModules(t, tc.name)
	}

	// Logged in: a second Token on the token must bring the same PIN.
	tok := open(t, base, false)
	cfg := base
	cfg.PIN = wrongPIN
	if _, err := Open(cfg, false); !errors.Is(err, ErrPIN) || !strings.Contains(err.Error(), "already logged in") {
		t.Fatalf("a second PIN on a logged-in token: %v", err)
	}
	if n := LoadedModules(); n != 1 {
		t.Fatalf("%d modules loaded with one Token open", n)
	}
	// The PIN file source works where the PIN is empty.
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = base
	cfg.PIN, cfg.PINFile = "", pinFile
	byFile := open(t, cfg, false)
	if byFile.Slot != tok.Slot || byFile.Label != "errs" {
		t.Fatalf("by PIN file: slot %d %q, want %d", byFile.Slot, byFile.Label, tok.Slot)
	}
}

// Tokens share the module (also by another path to it) and a token's
// login; closing one leaves the others working; the last Close unloads
// and a new Open loads afresh.
func TestRegistry(t *testing.T) {
	h := softhsm.New(t)
	h.Token("a", testPIN)
	h.Token("b", testPIN)
	link := filepath.Join(t.TempDir(), "softhsm.so")
	if err := os.Symlink(h.Lib, link); err != nil {
		t.Fatal(err)
	}
	a1, err := Open(Config{Lib: h.Lib, TokenLabel: "a", PIN: testPIN}, false)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := Open(Config{Lib: link, Slot: &a1.Slot, PIN: testPIN}, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(Config{Lib: h.Lib, TokenLabel: "b", PIN: testPIN}, false)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Ctx != a2.Ctx || a1.Ctx != b.Ctx || a1.Path != a2.Path || LoadedModules() != 1 {
		t.Fatalf("three Tokens on one module (two paths to it) loaded %d modules", LoadedModules())
	}
	if a2.Label != "a" || a1.Slot == b.Slot {
		t.Fatalf("slots: a %d/%d %q, b %d", a1.Slot, a2.Slot, a2.Label, b.Slot)
	}
	loggedIn := func(tok *Token) bool {
		t.Helper()
		s, err := tok.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Put(s)
		info, err := tok.Ctx.GetSessionInfo(s.H)
		if err != nil {
			t.Fatal(err)
		}
		return info.State == cryptoki.CKS_RO_USER_FUNCTIONS || info.State == cryptoki.CKS_RW_USER_FUNCTIONS
	}
	if !loggedIn(a1) || !loggedIn(a2) || !loggedIn(b) {
		t.Fatal("a Token is not logged in")
	}
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !loggedIn(a2) {
		t.Fatal("closing one Token of a token logged the other out")
	}
	if _, err := a1.Get(context.Background()); !errors.Is(err, ErrClosed) || !a1.Closed() {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := a2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	noModules(t, "after the last Close")
	for i := range 3 {
		tok, err := Open(Config{Lib: h.Lib, TokenLabel: "a", PIN: testPIN}, false)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if !loggedIn(tok) {
			t.Fatalf("reopen %d: not logged in", i)
		}
		if err := tok.Close(); err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
	}
	noModules(t, "after reopening")
}

// aesKey makes a session AES-256 key for the GCM tests.
func aesKey(t *testing.T, tok *Token, sh cryptoki.SessionHandle) cryptoki.ObjectHandle {
	t.Helper()
	a := cryptoki.NewAttribute
	k, err := tok.Ctx.GenerateKey(sh, []*cryptoki.Mechanism{cryptoki.NewMechanism(cryptoki.CKM_AES_KEY_GEN, nil)}, []*cryptoki.Attribute{
		a(cryptoki.CKA_CLASS, cryptoki.CKO_SECRET_KEY), a(cryptoki.CKA_KEY_TYPE, cryptoki.CKK_AES), a(cryptoki.CKA_VALUE_LEN, 32),
		a(cryptoki.CKA_TOKEN, false), a(cryptoki.CKA_SENSITIVE, true), a(cryptoki.CKA_EXTRACTABLE, false),
		a(cryptoki.CKA_ENCRYPT, true), a(cryptoki.CKA_DECRYPT, true), a(cryptoki.CKA_LABEL, "gcm-test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Many goroutines on few sessions: no session is ever held by two
// goroutines at once (SoftHSM would crash), the pool never lends more
// than its size, and every operation succeeds. Run it with -race.
func TestOneSessionPerGoroutine(t *testing.T) {
	h := softhsm.New(t)
	h.Token("pool", testPIN)
	tok := open(t, Config{Lib: h.Lib, TokenLabel: "pool", PIN: testPIN, MaxSessions: 3}, false)
	ctx := context.Background()
	s, err := tok.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := aesKey(t, tok, s.H) // a session object: visible to every session of the process
	tok.Put(s)

	var (
		mu     sync.Mutex
		holder = map[cryptoki.SessionHandle]int{}
		wg     sync.WaitGroup
		fails  atomic.Int32
	)
	for g := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				s, err := tok.Get(ctx)
				if err != nil {
					t.Error(err)
					fails.Add(1)
					return
				}
				mu.Lock()
				if other, busy := holder[s.H]; busy {
					t.Errorf("session %d lent to goroutines %d and %d at once", s.H, other, g)
				}
				holder[s.H] = g
				mu.Unlock()
				iv := make([]byte, GCMIVSize)
				rand.Read(iv)
				msg := []byte{byte(g)}
				ct, used, err := GCMEncrypt(tok.Ctx, s.H, key, iv, []byte("aad"), msg)
				if err == nil {
					var pt []byte
					pt, err = GCMDecrypt(tok.Ctx, s.H, key, used, []byte("aad"), ct)
					if err == nil && !bytes.Equal(pt, msg) {
						err = errors.New("round trip changed the message")
					}
				}
				if err != nil {
					t.Error(err)
					fails.Add(1)
				}
				mu.Lock()
				delete(holder, s.H)
				mu.Unlock()
				tok.Put(s)
			}
		}()
	}
	wg.Wait()
	st := tok.Stats()
	t.Logf("%+v", st)
	if st.Peak > 3 || st.Opened > 3 || st.InUse != 0 || st.Size != 3 {
		t.Fatalf("pool of 3: %+v", st)
	}
}

// A waiter gives up with its context; Close releases waiters with
// ErrClosed and waits for borrowed sessions to come back.
func TestWaitAndClose(t *testing.T) {
	h := softhsm.New(t)
	h.Token("wait", testPIN)
	tok, err := Open(Config{Lib: h.Lib, TokenLabel: "wait", PIN: testPIN, MaxSessions: 1, Dialect: testDialect}, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := tok.Get(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "pkcs11 test: waiting for a session") {
		t.Fatalf("Get with no free session: %v", err)
	}
	if _, err := tok.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with an ended context: %v", err)
	}
	waiter := make(chan error, 1)
	go func() { _, err := tok.Get(context.Background()); waiter <- err }()
	testwait.For(t, "Get to wait for a session", func() bool { return tok.Stats().Waiting > 0 })
	closed := make(chan error, 1)
	go func() { closed <- tok.Close() }()
	if err := <-waiter; !errors.Is(err, ErrClosed) || err.Error() != "pkcs11 test: closed" {
		t.Fatalf("waiter during Close: %v", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a session was borrowed", err)
	case <-time.After(20 * time.Millisecond):
	}
	tok.Put(s)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	noModules(t, "after Close")
}

// Sessions lost behind the pool's back — all of them, which also ends
// the login — are replaced by Discard and the next Get, which logs in
// again; session objects are gone, token objects are found again.
func TestLostSessions(t *testing.T) {
	h := softhsm.New(t)
	h.Token("lost", testPIN)
	tok := open(t, Config{Lib: h.Lib, TokenLabel: "lost", PIN: testPIN, MaxSessions: 1}, true)
	ctx := context.Background()
	s, err := tok.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := cryptoki.NewAttribute
	if _, err := tok.Ctx.CreateObject(s.H, []*cryptoki.Attribute{
		a(cryptoki.CKA_CLASS, cryptoki.CKO_DATA), a(cryptoki.CKA_TOKEN, true), a(cryptoki.CKA_PRIVATE, true),
		a(cryptoki.CKA_LABEL, "private-data"), a(cryptoki.CKA_VALUE, []byte("x")),
	}); err != nil {
		t.Fatal(err)
	}
	if err := tok.Ctx.CloseAllSessions(tok.Slot); err != nil {
		t.Fatal(err)
	}
	find := func(sh cryptoki.SessionHandle) ([]cryptoki.ObjectHandle, error) {
		return FindObjects(tok.Ctx, sh, []*cryptoki.Attribute{a(cryptoki.CKA_LABEL, "private-data")}, 4)
	}
	if _, err := find(s.H); !SessionLost(err) {
		t.Fatalf("a closed session: %v, want SessionLost", err)
	}
	opened := tok.Stats().Opened
	tok.Discard(s)
	for range 2 { // twice on one session: the search is closed each time
		s, err = tok.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		info, err := tok.Ctx.GetSessionInfo(s.H)
		if err != nil || info.State != cryptoki.CKS_RW_USER_FUNCTIONS {
			t.Fatalf("fresh session: state %d, %v; want logged in read/write", info.State, err)
		}
		objs, err := find(s.H)
		if err != nil || len(objs) != 1 {
			t.Fatalf("the private object after re-login: %v, %v", objs, err)
		}
		tok.Put(s)
	}
	if got := tok.Stats().Opened; got != opened+1 {
		t.Fatalf("opened %d sessions to replace one", got-opened)
	}
}

// GCMEncrypt and GCMDecrypt refuse bad IVs before the token sees them
// (SoftHSM would take an empty one and encrypt deterministically), round
// trip, and report a failed tag check as a DecryptError.
func TestGCMOnToken(t *testing.T) {
	h := softhsm.New(t)
	h.Token("gcm", testPIN)
	tok := open(t, Config{Lib: h.Lib, TokenLabel: "gcm", PIN: testPIN}, false)
	s, err := tok.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Put(s)
	key := aesKey(t, tok, s.H)
	for _, iv := range [][]byte{nil, {}, make([]byte, 8), make([]byte, 16)} {
		if _, _, err := GCMEncrypt(tok.Ctx, s.H, key, iv, nil, []byte("m")); err == nil || !strings.Contains(err.Error(), "IV") {
			t.Errorf("GCMEncrypt with a %d-byte IV: %v", len(iv), err)
		}
		if _, err := GCMDecrypt(tok.Ctx, s.H, key, iv, nil, make([]byte, 40)); err == nil || !strings.Contains(err.Error(), "IV") {
			t.Errorf("GCMDecrypt with a %d-byte IV: %v", len(iv), err)
		}
	}
	iv := make([]byte, GCMIVSize)
	rand.Read(iv)
	ct, used, err := GCMEncrypt(tok.Ctx, s.H, key, iv, []byte("aad"), []byte("message"))
	if err != nil || len(ct) != len("message")+GCMTagSize || !bytes.Equal(used, iv) {
		t.Fatalf("GCMEncrypt: %x %x %v", ct, used, err)
	}
	if pt, err := GCMDecrypt(tok.Ctx, s.H, key, used, []byte("aad"), ct); err != nil || string(pt) != "message" {
		t.Fatalf("GCMDecrypt: %q %v", pt, err)
	}
	var de *DecryptError
	if _, err := GCMDecrypt(tok.Ctx, s.H, key, used, []byte("other"), ct); !errors.As(err, &de) {
		t.Fatalf("wrong AAD: %v, want a DecryptError", err)
	} else {
		t.Logf("wrong AAD: %v", err)
	}
	// The session is usable after the failed C_Decrypt.
	if _, _, err := GCMEncrypt(tok.Ctx, s.H, key, iv, nil, []byte("m")); err != nil {
		t.Fatal(err)
	}
}
