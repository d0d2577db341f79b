package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cryptoki "github.com/miekg/pkcs11"

	ipk "github.com/keyraft/keyraft/internal/pkcs11"
	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/seal"
)

func rootKey(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// borrow takes a session from s's pool for direct PKCS#11 calls. Call
// the returned func to give it back; the test's cleanup does so otherwise
// (Close waits for every session).
func borrow(t testing.TB, s *Seal) (*ipk.Session, func()) {
	t.Helper()
	x, err := s.tok.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { s.tok.Put(x) }) }
	t.Cleanup(release)
	return x, release
}

func attrBool(t testing.TB, a *cryptoki.Attribute) bool {
	t.Helper()
	if len(a.Value) != 1 {
		t.Fatalf("attribute 0x%x: %d bytes, want a CK_BBOOL", a.Type, len(a.Value))
	}
	return a.Value[0] != 0
}

// 1. Round trip with a generated AES-256 key; tampering, truncation and a
// wrong AAD all fail with seal.ErrDecrypt and never panic.
func TestWrapUnwrapAESGCM(t *testing.T) {
	h := newHSM(t)
	h.token("gcm", testPIN)
	s := h.open(h.config("gcm"))
	ctx := testCtx(t)

	if got := s.Type(); got != "pkcs11" {
		t.Fatalf("Type() = %q", got)
	}
	key := rootKey(t)
	blob, err := s.Wrap(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("blob (%d bytes): %x", len(blob), blob)
	if bytes.Contains(blob, key) {
		t.Fatal("blob contains the root key")
	}
	label := "keyraft-root"
	wantLen := 3 + len(label) + gcmIVSize + len(key) + gcmTagSize
	if len(blob) != wantLen || blob[0] != blobVersion || blob[1] != byte(mechAESGCM) || int(blob[2]) != len(label) || string(blob[3:3+len(label)]) != label {
		t.Fatalf("blob layout: % x (want %d bytes: 01 01 %02x %q ...)", blob, wantLen, len(label), label)
	}
	got, err := s.Unwrap(ctx, blob)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, key) {
		t.Fatalf("Unwrap = %x, want %x", got, key)
	}

	// A fresh random IV every time.
	blob2, err := s.Wrap(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	hdr := 3 + len(label)
	if bytes.Equal(blob[hdr:hdr+gcmIVSize], blob2[hdr:hdr+gcmIVSize]) || bytes.Equal(blob, blob2) {
		t.Fatal("two wraps share an IV")
	}

	// Every single-byte change fails.
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x01
		if _, err := s.Unwrap(ctx, bad); !errors.Is(err, seal.ErrDecrypt) {
			t.Fatalf("byte %d flipped: err = %v, want ErrDecrypt", i, err)
		}
	}
	// Every truncation fails, and so does a trailing byte.
	for n := range len(blob) {
		if _, err := s.Unwrap(ctx, blob[:n]); !errors.Is(err, seal.ErrDecrypt) {
			t.Fatalf("truncated to %d: err = %v, want ErrDecrypt", n, err)
		}
	}
	if _, err := s.Unwrap(ctx, append(bytes.Clone(blob), 0)); !errors.Is(err, seal.ErrDecrypt) {
		t.Fatalf("extended: err = %v", err)
	}
	if _, err := s.Unwrap(ctx, nil); !errors.Is(err, ErrBlob) {
		t.Fatalf("nil blob: err = %v, want ErrBlob", err)
	}

	// The wrong AAD, below the header checks: the token itself refuses.
	b, err := parseBlob(blob)
	if err != nil {
		t.Fatal(err)
	}
	x, release := borrow(t, s)
	_, err = gcmDecrypt(s.tok.Ctx, x.H, s.loadKeys().secret, b.iv, []byte("another purpose"), b.ct)
	err = s.classifyDecrypt(x.H, s.loadKeys(), err)
	if !errors.Is(err, seal.ErrDecrypt) {
		t.Fatalf("wrong AAD: err = %v, want ErrDecrypt", err)
	}
	t.Logf("wrong AAD: %v", err)
	// The session is still good after a failed decryption.
	pt, err := gcmDecrypt(s.tok.Ctx, x.H, s.loadKeys().secret, b.iv, b.aad(), b.ct)
	release()
	if err != nil || !bytes.Equal(pt, key) {
		t.Fatalf("right AAD after a failure: %x, %v", pt, err)
	}

	// A blob claiming another key label names both keys.
	other := bytes.Clone(blob)
	other[3] = 'K'
	if _, err := s.Unwrap(ctx, other); !errors.Is(err, seal.ErrDecrypt) || !strings.Contains(err.Error(), `"Keyraft-root"`) {
		t.Fatalf("other label: %v", err)
	}

	// Plaintext bounds.
	if _, err := s.Wrap(ctx, nil); err == nil {
		t.Fatal("wrapped an empty key")
	}
	if _, err := s.Wrap(ctx, make([]byte, maxPlaintext+1)); err == nil {
		t.Fatal("wrapped an oversized plaintext")
	}
	if err := s.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
}

// 2. The generated key is a sensitive, never-extractable token object:
// checked with C_GetAttributeValue and with OpenSC's pkcs11-tool.
func TestGeneratedKeyIsSensitive(t *testing.T) {
	h := newHSM(t)
	h.token("attrs", testPIN)
	s := h.open(h.config("attrs"))

	x, release := borrow(t, s)
	c, key := s.tok.Ctx, s.loadKeys().secret
	want := []struct {
		typ  uint
		name string
		val  bool
	}{
		{cryptoki.CKA_TOKEN, "CKA_TOKEN", true},
		{cryptoki.CKA_PRIVATE, "CKA_PRIVATE", true},
		{cryptoki.CKA_SENSITIVE, "CKA_SENSITIVE", true},
		{cryptoki.CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", true},
		{cryptoki.CKA_EXTRACTABLE, "CKA_EXTRACTABLE", false},
		{cryptoki.CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", true},
		{cryptoki.CKA_ENCRYPT, "CKA_ENCRYPT", true},
		{cryptoki.CKA_DECRYPT, "CKA_DECRYPT", true},
		{cryptoki.CKA_WRAP, "CKA_WRAP", false},
		{cryptoki.CKA_UNWRAP, "CKA_UNWRAP", false},
		{cryptoki.CKA_LOCAL, "CKA_LOCAL", true},
	}
	tmpl := []*cryptoki.Attribute{
		cryptoki.NewAttribute(cryptoki.CKA_CLASS, nil),
		cryptoki.NewAttribute(cryptoki.CKA_KEY_TYPE, nil),
		cryptoki.NewAttribute(cryptoki.CKA_VALUE_LEN, nil),
		cryptoki.NewAttribute(cryptoki.CKA_LABEL, nil),
	}
	for _, w := range want {
		tmpl = append(tmpl, cryptoki.NewAttribute(w.typ, nil))
	}
	attrs, err := c.GetAttributeValue(x.H, key, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := attrUint(attrs[0]); v != cryptoki.CKO_SECRET_KEY {
		t.Errorf("CKA_CLASS = %d", v)
	}
	if v, _ := attrUint(attrs[1]); v != cryptoki.CKK_AES {
		t.Errorf("CKA_KEY_TYPE = %d", v)
	}
	if v, _ := attrUint(attrs[2]); v != 32 {
		t.Errorf("CKA_VALUE_LEN = %d", v)
	}
	if string(attrs[3].Value) != "keyraft-root" {
		t.Errorf("CKA_LABEL = %q", attrs[3].Value)
	}
	for i, w := range want {
		if got := attrBool(t, attrs[4+i]); got != w.val {
			t.Errorf("%s = %t, want %t", w.name, got, w.val)
		}
	}
	// The value itself cannot be read.
	_, err = c.GetAttributeValue(x.H, key, []*cryptoki.Attribute{cryptoki.NewAttribute(cryptoki.CKA_VALUE, nil)})
	release()
	if !ipk.IsCode(err, cryptoki.CKR_ATTRIBUTE_SENSITIVE) {
		t.Fatalf("reading CKA_VALUE: err = %v, want CKR_ATTRIBUTE_SENSITIVE", err)
	}

	out := h.Tool("--login", "--pin", testPIN, "--list-objects", "--token-label", "attrs")
	t.Logf("pkcs11-tool --list-objects:\n%s", out)
	block := objectBlock(out, "Secret Key Object", "keyraft-root")
	if block == "" {
		t.Fatal("pkcs11-tool does not list the secret key keyraft-root")
	}
	access := lineWith(block, "Access:")
	for _, w := range []string{"sensitive", "always sensitive", "never extractable"} {
		if !strings.Contains(access, w) {
			t.Errorf("pkcs11-tool Access line %q lacks %q", access, w)
		}
	}
	if strings.Contains(access, " extractable") && !strings.Contains(access, "never extractable") {
		t.Errorf("pkcs11-tool reports the key extractable: %q", access)
	}
	if !strings.Contains(block, "AES length 32") {
		t.Errorf("pkcs11-tool does not report an AES-256 key:\n%s", block)
	}
}

// objectBlock returns pkcs11-tool's paragraph for the object of kind
// (e.g. "Secret Key Object") labelled label.
func objectBlock(out, kind, label string) string {
	var blocks []string
	var cur []string
	for _, line := range strings.Split(out, "\n") {
		if line != "" && !strings.HasPrefix(line, " ") && len(cur) > 0 {
			blocks = append(blocks, strings.Join(cur, "\n"))
			cur = nil
		}
		cur = append(cur, line)
	}
	blocks = append(blocks, strings.Join(cur, "\n"))
	for _, b := range blocks {
		if strings.HasPrefix(b, kind) && strings.TrimSpace(strings.TrimPrefix(lineWith(b, "label:"), "label:")) == label {
			return b
		}
	}
	return ""
}

func lineWith(block, prefix string) string {
	for _, line := range strings.Split(block, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// 3. RSA-OAEP with a generated 3072-bit pair: the one RSA generation of
// the suite. SHA-256/MGF1-SHA-256 is the default; SoftHSM 2.6 implements
// only SHA-1 OAEP, so the round trip runs with oaep_hash SHA1 there and
// the default must fail at Open with ErrMechanism and a hint. On a token
// that takes SHA-256, the round trip runs with SHA-256 too.
func TestWrapUnwrapRSAOAEP(t *testing.T) {
	h := newHSM(t)
	h.token("rsa", testPIN)
	ctx := testCtx(t)
	cfg := h.config("rsa")
	cfg.Mechanism = MechanismRSAOAEP
	cfg.OAEPHash = "SHA1"
	start := time.Now()
	s := h.open(cfg)
	t.Logf("Open with RSA-3072 generation took %v", time.Since(start))
	k := s.loadKeys()
	if k.modulusLen != 384 {
		t.Fatalf("modulus is %d bytes, want 384", k.modulusLen)
	}
	sha1Blob := rsaRoundTrip(t, ctx, s, mechRSAOAEPSHA1, 384-2*20-2)

	// The private key is sensitive and not extractable.
	x, release := borrow(t, s)
	attrs, err := s.tok.Ctx.GetAttributeValue(x.H, k.priv, []*cryptoki.Attribute{
		cryptoki.NewAttribute(cryptoki.CKA_SENSITIVE, nil),
		cryptoki.NewAttribute(cryptoki.CKA_EXTRACTABLE, nil),
		cryptoki.NewAttribute(cryptoki.CKA_NEVER_EXTRACTABLE, nil),
		cryptoki.NewAttribute(cryptoki.CKA_TOKEN, nil),
		cryptoki.NewAttribute(cryptoki.CKA_PRIVATE, nil),
	})
	release()
	if err != nil {
		t.Fatal(err)
	}
	if !attrBool(t, attrs[0]) || attrBool(t, attrs[1]) || !attrBool(t, attrs[2]) || !attrBool(t, attrs[3]) || !attrBool(t, attrs[4]) {
		t.Fatalf("private key attributes: sensitive=%v extractable=%v never_extractable=%v token=%v private=%v",
			attrs[0].Value, attrs[1].Value, attrs[2].Value, attrs[3].Value, attrs[4].Value)
	}

	// The default, SHA-256, on the same (existing) pair.
	cfg.OAEPHash = ""
	cfg.GenerateKey = false
	s256, err := Open(cfg)
	switch {
	case errors.Is(err, ErrMechanism):
		t.Logf("this token refuses OAEP-SHA-256, as SoftHSM 2.6 does: %v", err)
		if !strings.Contains(err.Error(), `oaep_hash = "SHA1"`) {
			t.Fatalf("the error does not say what to do: %v", err)
		}
	case err != nil:
		t.Fatalf("Open with OAEP-SHA-256: %v", err)
	default:
		t.Cleanup(func() { s256.Close() })
		t.Log("this token implements OAEP-SHA-256")
		rsaRoundTrip(t, ctx, s256, mechRSAOAEP, 384-2*32-2)
		if _, err := s256.Unwrap(ctx, sha1Blob); !errors.Is(err, seal.ErrDecrypt) {
			t.Fatalf("SHA-256 seal unwrapping a SHA-1 blob: %v", err)
		}
	}

	// An AES-GCM seal refuses the RSA blob by its header.
	gcm := h.config("rsa")
	gcm.KeyLabel = "aes-key"
	s3 := h.open(gcm)
	if _, err := s3.Unwrap(ctx, sha1Blob); !errors.Is(err, seal.ErrDecrypt) {
		t.Fatalf("AES seal unwrapping an RSA blob: %v", err)
	}
}

func rsaRoundTrip(t *testing.T, ctx context.Context, s *Seal, mech mechanism, maxPT int) []byte {
	t.Helper()
	key := rootKey(t)
	blob, err := s.Wrap(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) != 3+len("keyraft-root")+384 || blob[1] != byte(mech) {
		t.Fatalf("blob is %d bytes, mechanism %d", len(blob), blob[1])
	}
	got, err := s.Unwrap(ctx, blob)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, key) {
		t.Fatal("RSA-OAEP round trip changed the key")
	}
	bad := bytes.Clone(blob)
	bad[len(bad)-7] ^= 0x80
	if _, err := s.Unwrap(ctx, bad); !errors.Is(err, seal.ErrDecrypt) {
		t.Fatalf("tampered RSA blob: %v", err)
	} else {
		t.Logf("tampered RSA-OAEP blob: %v", err)
	}
	for _, n := range []int{0, 3, 15, len(blob) - 1} {
		if _, err := s.Unwrap(ctx, blob[:n]); !errors.Is(err, seal.ErrDecrypt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := s.Wrap(ctx, make([]byte, maxPT)); err != nil {
		t.Fatalf("%d bytes: %v", maxPT, err)
	}
	if _, err := s.Wrap(ctx, make([]byte, maxPT+1)); err == nil {
		t.Fatalf("wrapped %d bytes with %s/3072", maxPT+1, mech)
	}
	if err := s.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	return blob
}

// 4. Open's sentinel errors; the PIN never shows in an error or a print.
func TestOpenErrors(t *testing.T) {
	h := newHSM(t)
	const pin = "Pin-8c41ee2f"
	const wrongPIN = "Wrong-9d52ff30"
	h.token("errs", pin)
	base := h.config("errs")
	base.PIN = pin

	var errs []error
	check := func(name string, cfg Config, want error) {
		t.Helper()
		s, err := Open(cfg)
		if err == nil {
			s.Close()
			t.Fatalf("%s: Open succeeded", name)
		}
		if !errors.Is(err, want) {
			t.Fatalf("%s: err = %v, want %v", name, err, want)
		}
		t.Logf("%s: %v", name, err)
		errs = append(errs, err)
	}

	cfg := base
	cfg.PIN = wrongPIN
	check("wrong PIN", cfg, ErrPIN)

	cfg = base
	cfg.TokenLabel = "no-such-token"
	check("missing token label", cfg, ErrToken)

	cfg = base
	cfg.TokenLabel = ""
	slot := uint(987654)
	cfg.Slot = &slot
	check("missing slot", cfg, ErrToken)

	cfg = base
	cfg.GenerateKey = false
	check("missing key", cfg, ErrKeyNotFound)

	cfg = base
	cfg.Lib = "/nonexistent/libpkcs11.so"
	check("bad module path", cfg, ErrModule)

	cfg = base
	cfg.Lib = t.TempDir() + "/junk.so"
	writeFile(t, cfg.Lib, "not a shared library")
	check("not a library", cfg, ErrModule)

	cfg = base
	cfg.KeyLabel = ""
	check("invalid config", cfg, ErrConfig)

	// The registry holds no module after all those failures.
	if n := ipk.LoadedModules(); n != 0 {
		t.Fatalf("%d modules still loaded after failed Opens", n)
	}

	// A second Seal on a token this process is logged in to must present
	// the same PIN.
	s := h.open(base)
	cfg = base
	cfg.PIN = wrongPIN
	check("wrong PIN while logged in", cfg, ErrPIN)

	for _, err := range errs {
		for _, p := range []string{pin, wrongPIN} {
			if strings.Contains(err.Error(), p) {
				t.Errorf("error reveals the PIN: %v", err)
			}
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{base, &base, s, []any{base}, struct{ C Config }{base}} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, pin) || strings.Contains(out, fmt.Sprintf("%x", pin)) {
				t.Errorf("fmt %s reveals the PIN: %s", verb, out)
			}
		}
	}
	t.Logf("config prints as %v; seal as %v", base, s)
}

// 5. 32 goroutines x 50 wrap+unwrap on 4 sessions, under -race. Sharing a
// session between goroutines would crash SoftHSM.
func TestConcurrentPool(t *testing.T) {
	h := newHSM(t)
	h.token("pool", testPIN)
	cfg := h.config("pool")
	cfg.MaxSessions = 4
	s := h.open(cfg)
	ctx := testCtx(t)

	const goroutines, rounds = 32, 50
	var wg sync.WaitGroup
	errc := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				key := []byte(fmt.Sprintf("goroutine %02d round %02d .......", g, i))
				blob, err := s.Wrap(ctx, key)
				if err != nil {
					errc <- err
					return
				}
				got, err := s.Unwrap(ctx, blob)
				if err != nil {
					errc <- err
					return
				}
				if !bytes.Equal(got, key) {
					errc <- fmt.Errorf("goroutine %d round %d: got %q", g, i, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	st := s.tok.Stats()
	peak, opened := st.Peak, st.Opened
	t.Logf("%d operations; peak sessions in use %d, sessions opened %d", 2*goroutines*rounds, peak, opened)
	if peak > 4 || opened > 4 {
		t.Fatalf("pool of 4 lent %d sessions at once and opened %d", peak, opened)
	}

	// Deterministically: with all 4 sessions lent out, a fifth caller waits
	// until one comes back.
	var releases []func()
	for range 4 {
		_, release := borrow(t, s)
		releases = append(releases, release)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Wrap(ctx, []byte("fifth"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a fifth Wrap ran while 4 sessions were lent out (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	releases[0]()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, r := range releases[1:] {
		r()
	}
	tok, err := s.tok.Ctx.GetTokenInfo(s.tok.Slot)
	if err != nil {
		t.Fatal(err)
	}
	if tok.SessionCount != cryptoki.CK_UNAVAILABLE_INFORMATION {
		t.Logf("token reports %d open sessions", tok.SessionCount)
		if tok.SessionCount > 4 {
			t.Fatalf("token has %d sessions open", tok.SessionCount)
		}
	}
}

// 6. Close, then use; Close twice; Open again (module re-initialized).
func TestCloseAndReopen(t *testing.T) {
	h := newHSM(t)
	h.token("life", testPIN)
	ctx := testCtx(t)
	key := rootKey(t)

	s, err := Open(h.config("life"))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := s.Wrap(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Wrap(ctx, key); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wrap after Close: %v", err)
	}
	if _, err := s.Unwrap(ctx, blob); !errors.Is(err, ErrClosed) {
		t.Fatalf("Unwrap after Close: %v", err)
	}
	if _, err := s.Unwrap(ctx, []byte("junk")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Unwrap of junk after Close: %v", err)
	}
	if err := s.Healthy(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Healthy after Close: %v", err)
	}
	t.Logf("use after Close: %v", ErrClosed)

	if ipk.LoadedModules() != 0 {
		t.Fatal("the module is still loaded after the last Close")
	}

	// Load, C_Initialize, log in and find the key again, a few times.
	for i := range 3 {
		cfg := h.config("life")
		cfg.GenerateKey = false
		s, err := Open(cfg)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		got, err := s.Unwrap(ctx, blob)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("reopen %d: unwrap: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("reopen %d: Close: %v", i, err)
		}
	}
}

// 7. Two tokens at once, both with a key labelled keyraft-root: a blob of
// one does not unwrap under the other. Closing one leaves the other
// working (the module stays initialized while either is open).
func TestBlobFromAnotherToken(t *testing.T) {
	h := newHSM(t)
	h.token("token-a", testPIN)
	h.token("token-b", testPIN)
	a := h.open(h.config("token-a"))
	b := h.open(h.config("token-b"))
	ctx := testCtx(t)
	if a.tok.Ctx != b.tok.Ctx {
		t.Fatal("two Seals on one module did not share it")
	}
	if a.tok.Slot == b.tok.Slot {
		t.Fatal("both seals use one slot")
	}

	key := rootKey(t)
	blobA, err := a.Wrap(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Unwrap(ctx, blobA); !errors.Is(err, seal.ErrDecrypt) {
		t.Fatalf("token B unwrapped token A's blob: %v", err)
	} else {
		t.Logf("token B on token A's blob: %v", err)
	}
	if got, err := a.Unwrap(ctx, blobA); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("token A: %v", err)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	blobB, err := b.Wrap(ctx, key)
	if err != nil {
		t.Fatalf("token B after A closed: %v", err)
	}
	if got, err := b.Unwrap(ctx, blobB); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("token B after A closed: %v", err)
	}
}

// Two Seals on the same token — one by label, one by slot ID — share the
// login; closing one does not log the other out.
func TestTwoSealsOneToken(t *testing.T) {
	h := newHSM(t)
	h.token("shared", testPIN)
	a := h.open(h.config("shared"))
	cfg := h.config("shared")
	cfg.GenerateKey = false
	cfg.TokenLabel = ""
	slot := a.tok.Slot
	cfg.Slot = &slot
	b := h.open(cfg)
	if b.tok.Label != "shared" {
		t.Fatalf("slot %d holds token %q", slot, b.tok.Label)
	}
	ctx := testCtx(t)

	blob, err := a.Wrap(ctx, []byte("root key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Unwrap(ctx, blob); err != nil || string(got) != "root key" {
		t.Fatalf("after the other seal closed: %q, %v", got, err)
	}
	if err := b.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
}

// 8. The IV guard (internal/pkcs11 tests it without a token) on the
// seal's encrypt and decrypt paths, and the trap it guards against:
// SoftHSM encrypting with an empty IV.
func TestGCMIVCheckOnToken(t *testing.T) {
	h := newHSM(t)
	h.token("iv", testPIN)
	s := h.open(h.config("iv"))
	x, _ := borrow(t, s)
	c, key := s.tok.Ctx, s.loadKeys().secret

	for _, iv := range [][]byte{nil, make([]byte, 8), make([]byte, 16)} {
		if _, _, err := ipk.GCMEncrypt(c, x.H, key, iv, gcmAADPrefix, []byte("root key")); err == nil || !strings.Contains(err.Error(), "IV") {
			t.Errorf("gcmEncrypt with a %d-byte IV: %v", len(iv), err)
		}
		if _, err := gcmDecrypt(c, x.H, key, iv, gcmAADPrefix, make([]byte, 40)); err == nil || !strings.Contains(err.Error(), "IV") {
			t.Errorf("gcmDecrypt with a %d-byte IV: %v", len(iv), err)
		}
	}
	// The session is untouched (no operation left active).
	if _, _, err := ipk.GCMEncrypt(c, x.H, key, make([]byte, 12), gcmAADPrefix, []byte("root key")); err != nil {
		t.Fatal(err)
	}

	// What the guard is for: straight through miekg/pkcs11, an empty IV
	// goes out as a NULL pointer with length 0.
	raw := func() ([]byte, error) {
		p := cryptoki.NewGCMParams(nil, gcmAADPrefix, gcmTagBits)
		defer p.Free()
		if err := c.EncryptInit(x.H, []*cryptoki.Mechanism{cryptoki.NewMechanism(cryptoki.CKM_AES_GCM, p)}, key); err != nil {
			return nil, err
		}
		return c.Encrypt(x.H, []byte("root key"))
	}
	ct1, err1 := raw()
	ct2, err2 := raw()
	switch {
	case err1 != nil:
		t.Logf("this SoftHSM refuses an empty GCM IV: %v", err1)
	case err2 == nil && bytes.Equal(ct1, ct2):
		t.Logf("this SoftHSM accepts an empty GCM IV and encrypts deterministically (nonce reuse): %x", ct1)
	default:
		t.Logf("this SoftHSM accepts an empty GCM IV: %x / %x (%v)", ct1, ct2, err2)
	}
}

// A session closed behind the pool's back is replaced; when every session
// is gone (and with them the login) the replacement logs in again.
func TestLostSessionsAreReplaced(t *testing.T) {
	h := newHSM(t)
	h.token("lost", testPIN)
	cfg := h.config("lost")
	cfg.MaxSessions = 2
	s := h.open(cfg)
	ctx := testCtx(t)
	key := rootKey(t)
	blob, err := s.Wrap(ctx, key)
	if err != nil {
		t.Fatal(err)
	}

	// Close every session behind the pool's back (borrowing them all
	// opens the ones not yet open).
	var (
		slots    []*ipk.Session
		releases []func()
	)
	for range s.tok.Size() {
		x, release := borrow(t, s)
		slots, releases = append(slots, x), append(releases, release)
	}
	closed := 0
	for _, x := range slots {
		if err := s.tok.Ctx.CloseSession(x.H); err != nil {
			t.Fatal(err)
		}
		closed++
	}
	for _, release := range releases {
		release()
	}
	before := s.tok.Stats().Opened
	for range 4 {
		got, err := s.Unwrap(ctx, blob)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("after losing %d sessions: %v", closed, err)
		}
	}
	if err := s.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("closed %d sessions behind the pool's back; %d reopened", closed, s.tok.Stats().Opened-before)
	if s.tok.Stats().Opened == before {
		t.Fatal("no session was reopened")
	}
}

// A caller waiting for a session gives up with its context, and Close
// releases waiters with ErrClosed.
func TestWaitForSession(t *testing.T) {
	h := newHSM(t)
	h.token("wait", testPIN)
	cfg := h.config("wait")
	cfg.MaxSessions = 1
	s := h.open(cfg)

	_, release := borrow(t, s) // the only session
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Wrap(ctx, []byte("k")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wrap with no free session: %v", err)
	}

	waiting := make(chan error, 1)
	go func() {
		_, err := s.Wrap(context.Background(), []byte("k"))
		waiting <- err
	}()
	testwait.For(t, "Wrap to wait for a session", func() bool { return s.tok.Stats().Waiting > 0 })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiter during Close: %v", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a session was still borrowed")
	case <-time.After(20 * time.Millisecond):
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// A key made beforehand with OpenSC, as the package documentation shows,
// is found and used (GenerateKey false).
func TestKeyMadeByPkcs11Tool(t *testing.T) {
	h := newHSM(t)
	h.token("made", testPIN)
	out := h.Tool("--token-label", "made", "--login", "--pin", testPIN, "--keygen", "--key-type", "AES:32",
		"--label", "keyraft-root", "--sensitive", "--private", "--usage-decrypt")
	t.Logf("pkcs11-tool --keygen:\n%s", out)
	cfg := h.config("made")
	cfg.GenerateKey = false
	s := h.open(cfg)
	ctx := testCtx(t)
	blob, err := s.Wrap(ctx, []byte("root key"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Unwrap(ctx, blob); err != nil || string(got) != "root key" {
		t.Fatalf("%q, %v", got, err)
	}
}

// Two keys with one label: Open refuses to guess.
func TestAmbiguousKeyLabel(t *testing.T) {
	h := newHSM(t)
	h.token("dup", testPIN)
	s := h.open(h.config("dup"))
	if err := s.generate(); err != nil { // a second key labelled keyraft-root
		t.Fatal(err)
	}
	_, err := Open(h.config("dup"))
	if !errors.Is(err, ErrKeyAmbiguous) || !strings.Contains(err.Error(), `"keyraft-root"`) {
		t.Fatalf("Open with two keys of one label: %v", err)
	}
	t.Log(err)
}

func TestValidate(t *testing.T) {
	slot := uint(1)
	ok := Config{Lib: "/x.so", TokenLabel: "t", PIN: "p", KeyLabel: "k"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no lib":         func(c *Config) { c.Lib = "" },
		"no token":       func(c *Config) { c.TokenLabel = "" },
		"slot and label": func(c *Config) { c.Slot = &slot },
		"no pin":         func(c *Config) { c.PIN = "" },
		"no key label":   func(c *Config) { c.KeyLabel = "" },
		"long label":     func(c *Config) { c.KeyLabel = strings.Repeat("k", 256) },
		"mechanism":      func(c *Config) { c.Mechanism = "CKM_AES_CBC" },
		"sessions":       func(c *Config) { c.MaxSessions = -1 },
	} {
		c := ok
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
