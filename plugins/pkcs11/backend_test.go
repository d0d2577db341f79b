package pkcs11

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	cryptoki "github.com/miekg/pkcs11"

	ipk "github.com/keyraft/keyraft/internal/pkcs11"
	"github.com/keyraft/keyraft/plugins/conformance"
	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/internal/plugintest"
	"github.com/keyraft/keyraft/plugins/sdk"
)

func TestConformanceInProcess(t *testing.T) {
	h := newHSM(t)
	conformance.TestCrypto(t, func(t *testing.T) sdk.CryptoBackend { return h.open() })
}

// TestConformancePlugin runs the whole suite, the SIGKILL check
// included, against the real plugin binary as `keyraft plugin test`
// does.
func TestConformancePlugin(t *testing.T) {
	h := newHSM(t)
	bin, _ := buildPlugin(t)
	t.Setenv(EnvPIN, testPIN)
	var out bytes.Buffer
	failed, err := conformance.RunBinary(context.Background(), conformance.KindCrypto, bin, h.args(), &out)
	if err != nil || failed != 0 {
		t.Fatalf("RunBinary: %d failed, %v\n%s", failed, err, out.String())
	}
	for _, want := range []string{"PASS  crypto/aes256-gcm96/EncryptDecrypt", "PASS  crypto/hmac-sha256/HMAC", "PASS  crypto/KeysSurviveCrash", "PASS  crypto/aes256-gcm96/Destroy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCapabilities(t *testing.T) {
	b := newHSM(t).open()
	caps, err := b.Capabilities(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !caps.KeepsMaterial {
		t.Error("KeepsMaterial is false")
	}
	if _, ok := caps.KeyType(sdk.KeyAES256GCM96); !ok {
		t.Error("no aes256-gcm96")
	}
	if _, ok := caps.KeyType(sdk.KeyHMACSHA256); !ok {
		t.Error("SoftHSM2 has CKM_SHA256_HMAC, but hmac-sha256 is not offered")
	}
	if _, ok := caps.KeyType(sdk.KeyEd25519); !ok {
		t.Error("SoftHSM2 has CKM_EDDSA, but ed25519 is not offered")
	}
	if _, err := b.Generate(context.Background(), "rsa-2048"); err == nil {
		t.Error("Generate(rsa-2048) succeeded")
	}
}

// attrs reads attributes of the key object of a handle.
func attrs(t *testing.T, b *Backend, handle []byte, types ...uint) ([]*cryptoki.Attribute, error) {
	t.Helper()
	kt, id, err := parseHandle(handle)
	if err != nil {
		t.Fatal(err)
	}
	var out []*cryptoki.Attribute
	err = b.withSession(context.Background(), func(sh cryptoki.SessionHandle) error {
		obj, err := b.object(sh, kt, id, classFor(kt, kt.ops[0]))
		if err != nil {
			return err
		}
		q := make([]*cryptoki.Attribute, len(types))
		for i, ty := range types {
			q[i] = cryptoki.NewAttribute(ty, nil)
		}
		out, err = b.tok.Ctx.GetAttributeValue(sh, obj, q)
		return err
	})
	return out, err
}

// TestKeysNeverLeaveTheToken: the token refuses to reveal the key value;
// the object is a sensitive, never-extractable, private token object
// usable only for its purpose.
func TestKeysNeverLeaveTheToken(t *testing.T) {
	h := newHSM(t)
	b := h.open()
	ctx := context.Background()
	for _, kt := range []string{sdk.KeyAES256GCM96, sdk.KeyHMACSHA256, sdk.KeyEd25519} {
		k, err := b.Generate(ctx, kt)
		if err != nil {
			t.Fatal(err)
		}
		if k.Material != nil || (k.PublicKey != nil) != (kt == sdk.KeyEd25519) {
			t.Fatalf("%s: Generate returned material, or a public key for a secret key", kt)
		}
		if _, err := attrs(t, b, k.Handle, cryptoki.CKA_VALUE); !ipk.IsCode(err, cryptoki.CKR_ATTRIBUTE_SENSITIVE) {
			t.Fatalf("%s: reading CKA_VALUE: %v, want CKR_ATTRIBUTE_SENSITIVE", kt, err)
		}
		a, err := attrs(t, b, k.Handle, cryptoki.CKA_EXTRACTABLE, cryptoki.CKA_NEVER_EXTRACTABLE, cryptoki.CKA_SENSITIVE,
			cryptoki.CKA_ALWAYS_SENSITIVE, cryptoki.CKA_TOKEN, cryptoki.CKA_PRIVATE, cryptoki.CKA_UNWRAP, cryptoki.CKA_DERIVE)
		if err != nil {
			t.Fatal(err)
		}
		want := []bool{false, true, true, true, true, true, false, false}
		for i, w := range want {
			if got := len(a[i].Value) == 1 && a[i].Value[0] == 1; got != w {
				t.Errorf("%s: attribute 0x%x is %v, want %v", kt, a[i].Type, got, w)
			}
		}
	}
	// OpenSC agrees, reading the token from another process.
	out := h.Tool("--token-label", testToken, "--login", "--pin", testPIN, "--list-objects")
	if n := strings.Count(out, "never extractable"); n != 3 {
		t.Fatalf("pkcs11-tool lists %d never-extractable keys, want 3 (AES, HMAC, Ed25519 private):\n%s", n, out)
	}
}

// TestTwoProcessesShareKeys: nodes share one HSM; a key made through one
// plugin process is usable through another, and a destroy through one is
// seen by the other.
func TestTwoProcessesShareKeys(t *testing.T) {
	h := newHSM(t)
	a, b := h.startPlugin("pkcs11-a", nil).Crypto(), h.startPlugin("pkcs11-b", nil).Crypto()
	ctx := context.Background()
	aes, err := a.Generate(ctx, sdk.KeyAES256GCM96)
	if err != nil {
		t.Fatal(err)
	}
	mac, err := a.Generate(ctx, sdk.KeyHMACSHA256)
	if err != nil {
		t.Fatal(err)
	}
	ka, km := sdk.KeyRef{Handle: aes.Handle}, sdk.KeyRef{Handle: mac.Handle}
	enc, err := a.Encrypt(ctx, []sdk.EncryptItem{{Key: ka, Plaintext: []byte("shared"), AssocData: []byte("ad")}})
	if err != nil || enc[0].Err != nil {
		t.Fatalf("Encrypt in A: %v %v", err, enc[0].Err)
	}
	dec, err := b.Decrypt(ctx, []sdk.DecryptItem{{Key: ka, Ciphertext: enc[0].Ciphertext, AssocData: []byte("ad")}})
	if err != nil || dec[0].Err != nil || string(dec[0].Plaintext) != "shared" {
		t.Fatalf("Decrypt in B of A's ciphertext: %q %v %v", dec[0].Plaintext, err, dec[0].Err)
	}
	ma, err1 := a.HMAC(ctx, []sdk.HMACItem{{Key: km, Message: []byte("m")}})
	mb, err2 := b.HMAC(ctx, []sdk.HMACItem{{Key: km, Message: []byte("m")}})
	if err1 != nil || err2 != nil || ma[0].Err != nil || mb[0].Err != nil || !bytes.Equal(ma[0].MAC, mb[0].MAC) {
		t.Fatalf("HMAC in A and B differ: %v %v %v %v", err1, err2, ma[0].Err, mb[0].Err)
	}
	ed, err := a.Generate(ctx, sdk.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	ke := sdk.KeyRef{Handle: ed.Handle}
	sig, err := a.Sign(ctx, []sdk.SignItem{{Key: ke, Message: []byte("m")}})
	if err != nil || sig[0].Err != nil || !ed25519.Verify(ed.PublicKey, []byte("m"), sig[0].Signature) {
		t.Fatalf("Sign in A: %v", errors.Join(err, sig[0].Err))
	}
	vs, err := b.Verify(ctx, []sdk.VerifyItem{{Key: ke, Message: []byte("m"), Signature: sig[0].Signature}, {Key: ke, Message: []byte("n"), Signature: sig[0].Signature}})
	if err != nil || vs[0].Err != nil || !vs[0].Valid || vs[1].Valid {
		t.Fatalf("Verify in B of A's signature: %v, valid %v (want true, false for another message)", err, vs)
	}
	// Destroyed through B: gone for A too (A has the object cached).
	if err := b.Destroy(ctx, ka); err != nil {
		t.Fatal(err)
	}
	enc, err = a.Encrypt(ctx, []sdk.EncryptItem{{Key: ka, Plaintext: []byte("x")}})
	if err != nil || enc[0].Err == nil {
		t.Fatalf("A encrypted with a key B destroyed: %v", err)
	}
	if err := a.Destroy(ctx, ka); err != nil {
		t.Fatalf("destroying a key that is already gone: %v", err)
	}
}

// TestIVGuard: SoftHSM encrypts with an empty IV without complaint (and
// deterministically); the backend refuses any IV that is not 12 bytes.
func TestIVGuard(t *testing.T) {
	b := newHSM(t).open()
	k, err := b.Generate(context.Background(), sdk.KeyAES256GCM96)
	if err != nil {
		t.Fatal(err)
	}
	_, id, _ := parseHandle(k.Handle)
	for _, iv := range [][]byte{nil, make([]byte, 11), make([]byte, 16)} {
		err := b.withSession(context.Background(), func(sh cryptoki.SessionHandle) error {
			obj, err := b.object(sh, aesType, id, classFor(aesType, sdk.OpEncrypt))
			if err != nil {
				return err
			}
			_, _, err = ipk.GCMEncrypt(b.tok.Ctx, sh, obj, iv, nil, []byte("x"))
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "IV") {
			t.Fatalf("a %d-byte IV: %v", len(iv), err)
		}
	}
}

// TestSessionsLost: every session of the process is closed behind the
// backend's back (which also ends the login); the next calls open new
// sessions, log in again and find the keys again.
func TestSessionsLost(t *testing.T) {
	b := newHSM(t).open()
	ctx := context.Background()
	k, err := b.Generate(ctx, sdk.KeyAES256GCM96)
	if err != nil {
		t.Fatal(err)
	}
	ref := sdk.KeyRef{Handle: k.Handle}
	enc, err := b.Encrypt(ctx, []sdk.EncryptItem{{Key: ref, Plaintext: []byte("before")}})
	if err != nil || enc[0].Err != nil {
		t.Fatal(err, enc[0].Err)
	}
	if err := b.tok.Ctx.CloseAllSessions(b.tok.Slot); err != nil {
		t.Fatal(err)
	}
	dec, err := b.Decrypt(ctx, []sdk.DecryptItem{{Key: ref, Ciphertext: enc[0].Ciphertext}, {Key: ref, Ciphertext: enc[0].Ciphertext}})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range dec {
		if d.Err != nil || string(d.Plaintext) != "before" {
			t.Fatalf("item %d after every session was lost: %q %v", i, d.Plaintext, d.Err)
		}
	}
}

// TestItemErrors: what is wrong with one item is that item's error.
func TestItemErrors(t *testing.T) {
	b := newHSM(t).open()
	ctx := context.Background()
	aes, _ := b.Generate(ctx, sdk.KeyAES256GCM96)
	mac, _ := b.Generate(ctx, sdk.KeyHMACSHA256)
	gone := makeHandle(aesType, bytes.Repeat([]byte{7}, idSize))
	enc, err := b.Encrypt(ctx, []sdk.EncryptItem{
		{Key: sdk.KeyRef{Handle: aes.Handle}, Plaintext: []byte("ok")},
		{Key: sdk.KeyRef{Handle: mac.Handle}, Plaintext: []byte("hmac key")},
		{Key: sdk.KeyRef{Handle: gone}, Plaintext: []byte("no such key")},
		{Key: sdk.KeyRef{Handle: aes.Handle, Material: []byte("m")}, Plaintext: []byte("material")},
		{Key: sdk.KeyRef{Handle: []byte("junk")}, Plaintext: []byte("junk handle")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if enc[0].Err != nil {
		t.Fatal(enc[0].Err)
	}
	for i, want := range map[int]error{2: ErrKeyNotFound, 3: ErrMaterial, 4: ErrHandle} {
		if !errors.Is(enc[i].Err, want) {
			t.Errorf("item %d: %v, want %v", i, enc[i].Err, want)
		}
	}
	if enc[1].Err == nil {
		t.Error("encrypting with an HMAC key succeeded")
	}
	dec, _ := b.Decrypt(ctx, []sdk.DecryptItem{{Key: sdk.KeyRef{Handle: aes.Handle}, Ciphertext: append(bytes.Clone(enc[0].Ciphertext), 0)}})
	if !errors.Is(dec[0].Err, ErrDecrypt) {
		t.Errorf("a damaged ciphertext: %v, want ErrDecrypt", dec[0].Err)
	}
}

// TestContextEnds: a call whose context has ended stops, with the
// context's error for the call.
func TestContextEnds(t *testing.T) {
	b := newHSM(t).open()
	k, _ := b.Generate(context.Background(), sdk.KeyAES256GCM96)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Encrypt(ctx, []sdk.EncryptItem{{Key: sdk.KeyRef{Handle: k.Handle}}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Encrypt with an ended context: %v", err)
	}
}

// TestFewSessionsManyCallers: more concurrent calls than sessions wait
// for one; none shares a session (SoftHSM would crash).
func TestFewSessionsManyCallers(t *testing.T) {
	h := newHSM(t)
	cfg := h.config()
	cfg.MaxSessions = 2
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	k, _ := b.Generate(ctx, sdk.KeyAES256GCM96)
	ref := sdk.KeyRef{Handle: k.Handle}
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				msg := []byte(fmt.Sprint(w, "/", i))
				enc, err := b.Encrypt(ctx, []sdk.EncryptItem{{Key: ref, Plaintext: msg}})
				if err == nil && enc[0].Err != nil {
					err = enc[0].Err
				}
				if err != nil {
					errc <- err
					return
				}
				dec, err := b.Decrypt(ctx, []sdk.DecryptItem{{Key: ref, Ciphertext: enc[0].Ciphertext}})
				if err == nil && (dec[0].Err != nil || !bytes.Equal(dec[0].Plaintext, msg)) {
					err = fmt.Errorf("round trip of %q: %q, %v", msg, dec[0].Plaintext, dec[0].Err)
				}
				if err != nil {
					errc <- err
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
}

// TestOpenErrors: each misconfiguration has its sentinel, and no error
// or log line carries the PIN.
func TestOpenErrors(t *testing.T) {
	h := newHSM(t)
	const wrongPIN = "98765"
	cases := []struct {
		name string
		mod  func(*Config)
		want error
	}{
		{"wrong PIN", func(c *Config) { c.PIN = wrongPIN }, ErrPIN},
		{"no such token", func(c *Config) { c.TokenLabel = "other" }, ErrToken},
		{"no such slot", func(c *Config) { c.TokenLabel = ""; s := uint(4242); c.Slot = &s }, ErrToken},
		{"no module", func(c *Config) { c.Lib = "/nonexistent/lib.so" }, ErrModule},
		{"no PIN", func(c *Config) { c.PIN = "" }, ErrConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := h.config()
			tc.mod(&cfg)
			b, err := Open(cfg)
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), wrongPIN) || strings.Contains(err.Error(), testPIN) {
				t.Fatalf("the error shows the PIN: %v", err)
			}
		})
	}
	cfg := h.config()
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%x", cfg)} {
		if strings.Contains(s, testPIN) || strings.Contains(s, fmt.Sprintf("%x", testPIN)) {
			t.Fatalf("Config prints the PIN: %s", s)
		}
	}
	// The plugin started with a wrong PIN exits with a clear error, and
	// logs no PIN.
	var log plugintest.SyncBuffer
	bin, sum := buildPlugin(t)
	_, err := host.Start(context.Background(), host.Config{
		Name: "pkcs11", Command: bin, Args: h.args(), SHA256: sum, Logger: plugintest.Logger(t, &log),
		Env: []string{"SOFTHSM2_CONF=" + h.Conf, EnvPIN + "=" + wrongPIN},
	})
	if !errors.Is(err, host.ErrStartFailed) {
		t.Fatalf("starting the plugin with a wrong PIN: %v", err)
	}
	if !strings.Contains(log.String(), "incorrect PIN") || strings.Contains(log.String(), wrongPIN) {
		t.Fatalf("the plugin's log should say the PIN is incorrect, without the PIN:\n%s", log.String())
	}
}

// TestFailedDecryptLeavesSessionUsable: with one session, items after a
// failed C_Decrypt (which ends the operation) still decrypt.
func TestFailedDecryptLeavesSessionUsable(t *testing.T) {
	h := newHSM(t)
	cfg := h.config()
	cfg.MaxSessions = 1
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	k, _ := b.Generate(ctx, sdk.KeyAES256GCM96)
	ref := sdk.KeyRef{Handle: k.Handle}
	enc, err := b.Encrypt(ctx, []sdk.EncryptItem{{Key: ref, Plaintext: []byte("good"), AssocData: []byte("a")}})
	if err != nil || enc[0].Err != nil {
		t.Fatal(err, enc[0].Err)
	}
	ct := enc[0].Ciphertext
	bad := bytes.Clone(ct)
	bad[len(bad)-1] ^= 1
	dec, err := b.Decrypt(ctx, []sdk.DecryptItem{
		{Key: ref, Ciphertext: bad, AssocData: []byte("a")},
		{Key: ref, Ciphertext: ct, AssocData: []byte("a")},
		{Key: ref, Ciphertext: ct, AssocData: []byte("b")},
		{Key: ref, Ciphertext: ct, AssocData: []byte("a")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, wantOK := range []bool{false, true, false, true} {
		if ok := dec[i].Err == nil && string(dec[i].Plaintext) == "good"; ok != wantOK {
			t.Errorf("item %d: %q, %v; want success %v", i, dec[i].Plaintext, dec[i].Err, wantOK)
		}
	}
}
