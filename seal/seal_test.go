package seal

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestGFInverse(t *testing.T) {
	for a := 1; a < 256; a++ {
		if got := gfMul(byte(a), gfInv(byte(a))); got != 1 {
			t.Fatalf("a=%d: a*inv(a)=%d", a, got)
		}
	}
}

func TestShamirEverySubsetAtThreshold(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	shares, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		for j := i + 1; j < 5; j++ {
			for k := j + 1; k < 5; k++ {
				got, err := Combine([][]byte{shares[i], shares[j], shares[k]})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, secret) {
					t.Fatalf("shares %d,%d,%d recovered a different secret", i, j, k)
				}
			}
		}
	}
	all, err := Combine(shares)
	if err != nil || !bytes.Equal(all, secret) {
		t.Fatalf("all five shares: %v", err)
	}
	two, err := Combine(shares[:2])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(two, secret) {
		t.Fatal("two of three shares recovered the secret")
	}
}

func TestShamirOneOfOne(t *testing.T) {
	secret := []byte{1, 2, 3}
	shares, err := Split(secret, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Combine(shares)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("got %x, %v", got, err)
	}
}

func TestSplitRejects(t *testing.T) {
	for _, c := range []struct {
		secret     []byte
		parts, thr int
	}{
		{nil, 3, 2}, {[]byte{1}, 0, 1}, {[]byte{1}, 256, 2}, {[]byte{1}, 3, 4}, {[]byte{1}, 3, 0},
	} {
		if _, err := Split(c.secret, c.parts, c.thr); err == nil {
			t.Errorf("Split(%x, %d, %d) succeeded", c.secret, c.parts, c.thr)
		}
	}
}

func TestCombineRejects(t *testing.T) {
	shares, _ := Split([]byte("secret"), 3, 2)
	for name, in := range map[string][][]byte{
		"none":      nil,
		"short":     {{1}},
		"lengths":   {shares[0], shares[1][:4]},
		"duplicate": {shares[0], shares[0]},
		"zero x":    {append(append([]byte{}, shares[0][:6]...), 0), shares[1]},
	} {
		if _, err := Combine(in); !errors.Is(err, ErrInvalidShares) {
			t.Errorf("%s: err = %v, want ErrInvalidShares", name, err)
		}
	}
}

func TestKeyringRotationKeepsOldTerms(t *testing.T) {
	k, err := NewKeyring(time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	old, err := k.Encrypt([]byte("path/a"), []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if term, _ := CiphertextTerm(old); term != 1 {
		t.Fatalf("term = %d", term)
	}
	if n, err := k.AddTerm(time.Unix(1, 0)); err != nil || n != 2 {
		t.Fatalf("AddTerm = %d, %v", n, err)
	}
	fresh, _ := k.Encrypt([]byte("path/a"), []byte("v2"))
	if term, _ := CiphertextTerm(fresh); term != 2 {
		t.Fatalf("new value term = %d", term)
	}
	for _, c := range []struct{ ct, want []byte }{{old, []byte("v1")}, {fresh, []byte("v2")}} {
		pt, err := k.Decrypt([]byte("path/a"), c.ct)
		if err != nil || !bytes.Equal(pt, c.want) {
			t.Fatalf("decrypt: %q %v", pt, err)
		}
	}
	if _, err := k.Decrypt([]byte("path/b"), old); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("value moved to another path decrypted: %v", err)
	}
	tampered := append([]byte(nil), fresh...)
	tampered[len(tampered)-1] ^= 1
	if _, err := k.Decrypt([]byte("path/a"), tampered); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered value: %v", err)
	}
}

func TestKeyringWrapRoundTrip(t *testing.T) {
	root, _ := NewRootKey()
	k, _ := NewKeyring(time.Unix(5, 0))
	k.AddTerm(time.Unix(6, 0))
	ct, _ := k.Encrypt(nil, []byte("hello"))
	blob, err := WrapKeyring(root, k)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, k.terms[1].Key) || bytes.Contains(blob, k.terms[2].Key) {
		t.Fatal("wrapped keyring contains a term key in the clear")
	}
	k2, err := UnwrapKeyring(root, blob)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ActiveTerm() != 2 || len(k2.Terms()) != 2 {
		t.Fatalf("unwrapped keyring: active %d terms %v", k2.ActiveTerm(), k2.Terms())
	}
	if pt, err := k2.Decrypt(nil, ct); err != nil || string(pt) != "hello" {
		t.Fatalf("decrypt with unwrapped keyring: %q %v", pt, err)
	}
	other, _ := NewRootKey()
	if _, err := UnwrapKeyring(other, blob); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong root key: %v", err)
	}
}

func TestShamirSealAndCollector(t *testing.T) {
	unsealKey, _ := NewRootKey()
	shares, _ := Split(unsealKey, 5, 3)
	s, _ := NewShamir(unsealKey)
	root, _ := NewRootKey()
	blob, err := s.Wrap(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}

	var c ShareCollector
	for i, sh := range shares[:2] {
		if key, err := c.Add(sh, 3); key != nil || err != nil {
			t.Fatalf("share %d: key=%v err=%v", i, key != nil, err)
		}
	}
	if key, _ := c.Add(shares[1], 3); key != nil || c.Progress() != 2 {
		t.Fatalf("a repeated share advanced progress to %d", c.Progress())
	}
	key, err := c.Add(shares[4], 3)
	if err != nil || key == nil {
		t.Fatalf("third share: %v", err)
	}
	if c.Progress() != 0 {
		t.Fatalf("progress after combining = %d", c.Progress())
	}
	s2, _ := NewShamir(key)
	got, err := s2.Unwrap(context.Background(), blob)
	if err != nil || !bytes.Equal(got, root) {
		t.Fatalf("unwrap: %v", err)
	}

	// Wrong shares combine to a wrong key, which fails to unwrap.
	otherShares, _ := Split(bytes.Repeat([]byte{7}, 32), 5, 3)
	c.Add(otherShares[0], 3)
	c.Add(otherShares[1], 3)
	wrong, _ := c.Add(otherShares[2], 3)
	s3, _ := NewShamir(wrong)
	if _, err := s3.Unwrap(context.Background(), blob); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong shares unwrapped: %v", err)
	}

	c.Add(shares[0], 3)
	c.Reset()
	if c.Progress() != 0 {
		t.Fatal("reset kept shares")
	}
}

func TestBarrierSealedAndConcurrent(t *testing.T) {
	var b Barrier
	if _, err := b.Encrypt(nil, []byte("x")); !errors.Is(err, ErrSealed) {
		t.Fatalf("sealed encrypt: %v", err)
	}
	root, _ := NewRootKey()
	k, _ := NewKeyring(time.Now())
	blob, _ := WrapKeyring(root, k)
	if err := b.Unseal(root, blob); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				ct, err := b.Encrypt([]byte("p"), []byte("v"))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := b.Decrypt([]byte("p"), ct); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ct, _ := b.Encrypt(nil, []byte("x"))
	b.Seal()
	if _, err := b.Decrypt(nil, ct); !errors.Is(err, ErrSealed) {
		t.Fatalf("decrypt after seal: %v", err)
	}
	if !b.Sealed() {
		t.Fatal("barrier not sealed")
	}
}

// Reload swaps the keyring of an unsealed barrier for a rotated one: new
// values take the new term, old ones still open, Rewrap moves a value to
// the active term, and a sealed barrier stays sealed.
func TestBarrierReloadAndRewrap(t *testing.T) {
	var b Barrier
	root, _ := NewRootKey()
	k, _ := NewKeyring(time.Unix(10, 0))
	blob1, _ := WrapKeyring(root, k)
	k.AddTerm(time.Unix(20, 0))
	blob2, _ := WrapKeyring(root, k)
	k.Zero()

	if err := b.Reload(root, blob2); !errors.Is(err, ErrSealed) || !b.Sealed() {
		t.Fatalf("reload of a sealed barrier: %v, sealed %v", err, b.Sealed())
	}
	if _, err := b.KeyStatus(); !errors.Is(err, ErrSealed) {
		t.Fatalf("key status while sealed: %v", err)
	}
	if err := b.Unseal(root, blob1); err != nil {
		t.Fatal(err)
	}
	old, _ := b.Encrypt([]byte("p"), []byte("old"))
	if st, err := b.KeyStatus(); err != nil || st.Term != 1 || !st.InstallTime.Equal(time.Unix(10, 0)) {
		t.Fatalf("key status before reload: %+v %v", st, err)
	}
	// Encryptions race the reload; each one opens afterwards.
	var wg sync.WaitGroup
	cts := make(chan []byte, 400)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				ct, err := b.Encrypt([]byte("p"), []byte("v"))
				if err != nil {
					t.Error(err)
					return
				}
				cts <- ct
			}
		}()
	}
	if err := b.Reload(root, blob2); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(cts)
	for ct := range cts {
		if pt, err := b.Decrypt([]byte("p"), ct); err != nil || string(pt) != "v" {
			t.Fatalf("value encrypted during the reload: %q %v", pt, err)
		}
	}
	if st, err := b.KeyStatus(); err != nil || st.Term != 2 || !st.InstallTime.Equal(time.Unix(20, 0)) || b.ActiveTerm() != 2 {
		t.Fatalf("key status after reload: %+v %v", st, err)
	}
	fresh, _ := b.Encrypt([]byte("p"), []byte("new"))
	if term, _ := CiphertextTerm(fresh); term != 2 {
		t.Fatalf("new value has term %d", term)
	}
	if pt, err := b.Decrypt([]byte("p"), old); err != nil || string(pt) != "old" {
		t.Fatalf("old value after reload: %q %v", pt, err)
	}
	re, err := b.Rewrap([]byte("p"), old, 2)
	if err != nil {
		t.Fatal(err)
	}
	if term, _ := CiphertextTerm(re); term != 2 {
		t.Fatalf("rewrapped value has term %d", term)
	}
	if pt, err := b.Decrypt([]byte("p"), re); err != nil || string(pt) != "old" {
		t.Fatalf("rewrapped value: %q %v", pt, err)
	}
	if _, err := b.Decrypt([]byte("q"), re); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("rewrap lost the aad binding: %v", err)
	}
	if again, err := b.Rewrap([]byte("p"), re, 2); again != nil || err != nil {
		t.Fatalf("rewrap of a current value: %x %v", again, err)
	}
	if _, err := b.Rewrap([]byte("q"), old, 2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("rewrap with the wrong aad: %v", err)
	}
	if _, err := b.Rewrap([]byte("p"), []byte("short"), 2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("rewrap of garbage: %v", err)
	}
	// A blob that does not open leaves the loaded keyring alone.
	other, _ := NewRootKey()
	if err := b.Reload(other, blob1); !errors.Is(err, ErrDecrypt) || b.ActiveTerm() != 2 {
		t.Fatalf("reload with the wrong root key: %v, term %d", err, b.ActiveTerm())
	}
	b.Seal()
	if _, err := b.Rewrap([]byte("p"), old, 2); !errors.Is(err, ErrSealed) {
		t.Fatalf("rewrap while sealed: %v", err)
	}
}
