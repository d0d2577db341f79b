package conformance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/keyraft/keyraft/plugins/sdk"
)

// OpenCrypto opens a crypto backend for one test; it registers its own
// cleanup with t.
type OpenCrypto func(t *testing.T) sdk.CryptoBackend

// TestCrypto runs the crypto contract checks on every key type the
// backend announces, for the operations it announces.
func TestCrypto(t *testing.T, open OpenCrypto) {
	runCrypto(testingT{t}, func(t T) sdk.CryptoBackend { return open(t.(testingT).T) })
}

// Sizes of the batch and concurrency checks.
const (
	largeBatch      = 1000
	concurrentCalls = 8
	callsPerWorker  = 20
)

var knownOps = []sdk.Operation{sdk.OpEncrypt, sdk.OpDecrypt, sdk.OpSign, sdk.OpVerify, sdk.OpHMAC}

// runCrypto runs every crypto check under t on one backend from open.
func runCrypto(t T, open func(T) sdk.CryptoBackend) {
	ctx := context.Background()
	b := open(t)
	caps, err := b.Capabilities(ctx)
	if err != nil {
		t.Fatalf("Capabilities: %v", err)
	}
	t.Run("Capabilities", func(t T) { cryptoCapabilities(t, caps) })
	if len(caps.KeyTypes) == 0 {
		return
	}
	t.Run("UnknownKeyType", func(t T) {
		if _, err := b.Generate(ctx, "no-such-key-type"); err == nil {
			t.Fatal("Generate of an unknown key type succeeded")
		}
	})
	t.Run("EmptyBatches", func(t T) { cryptoEmptyBatches(t, b) })
	for _, kt := range caps.KeyTypes {
		t.Run(kt.KeyType, func(t T) {
			k1, k2 := generate(t, b, caps, kt), generate(t, b, caps, kt)
			if bytes.Equal(k1.Handle, k2.Handle) {
				t.Fatal("two Generate calls returned the same handle")
			}
			r1, r2 := ref(k1), ref(k2)
			if kt.Supports(sdk.OpEncrypt) && kt.Supports(sdk.OpDecrypt) {
				t.Run("EncryptDecrypt", func(t T) { cryptoEncryptDecrypt(t, b, r1, r2) })
			}
			if kt.Supports(sdk.OpSign) && kt.Supports(sdk.OpVerify) {
				t.Run("SignVerify", func(t T) { cryptoSignVerify(t, b, k1, r1, r2) })
			}
			if kt.Supports(sdk.OpHMAC) {
				t.Run("HMAC", func(t T) { cryptoHMAC(t, b, r1, r2) })
			}
			if u := usageOf(kt); u != "" {
				t.Run("ResultsInOrder", func(t T) { cryptoInOrder(t, b, u, r1, r2) })
				t.Run("UnknownKey", func(t T) { cryptoUnknownKey(t, b, u, caps, r1, r2) })
				t.Run("LargeBatch", func(t T) { cryptoLargeBatch(t, b, u, r1) })
				t.Run("Concurrent", func(t T) { cryptoConcurrent(t, b, u, r1, r2) })
			}
			t.Run("UnsupportedOperations", func(t T) { cryptoUnsupported(t, b, kt, r1) })
			t.Run("Destroy", func(t T) { cryptoDestroy(t, b, caps, kt, r1, r2) })
		})
	}
}

func cryptoCapabilities(t T, caps sdk.Capabilities) {
	if len(caps.KeyTypes) == 0 {
		t.Fatal("Capabilities lists no key type")
	}
	seen := map[string]bool{}
	for _, kt := range caps.KeyTypes {
		if kt.KeyType == "" {
			t.Errorf("a key type has no name")
		}
		if seen[kt.KeyType] {
			t.Errorf("key type %q is listed twice", kt.KeyType)
		}
		seen[kt.KeyType] = true
		if len(kt.Operations) == 0 {
			t.Errorf("key type %q lists no operation", kt.KeyType)
		}
		for _, op := range kt.Operations {
			if !slices.Contains(knownOps, op) {
				t.Errorf("key type %q lists unknown operation %q", kt.KeyType, op)
			}
		}
		if kt.Supports(sdk.OpEncrypt) != kt.Supports(sdk.OpDecrypt) {
			t.Errorf("key type %q supports one of encrypt and decrypt only", kt.KeyType)
		}
		if kt.Supports(sdk.OpSign) != kt.Supports(sdk.OpVerify) {
			t.Errorf("key type %q supports one of sign and verify only", kt.KeyType)
		}
	}
}

func generate(t T, b sdk.CryptoBackend, caps sdk.Capabilities, kt sdk.KeyTypeCapability) sdk.GeneratedKey {
	t.Helper()
	k, err := b.Generate(context.Background(), kt.KeyType)
	if err != nil {
		t.Fatalf("Generate(%s): %v", kt.KeyType, err)
	}
	if len(k.Handle) == 0 {
		t.Fatal("Generate returned no handle")
	}
	if !caps.KeepsMaterial && len(k.Material) == 0 {
		t.Fatal("a backend that keeps no material returned none")
	}
	if caps.KeepsMaterial && len(k.Material) != 0 {
		t.Fatal("a backend that keeps its material (KeepsMaterial) returned material from Generate")
	}
	if kt.Supports(sdk.OpVerify) && len(k.PublicKey) == 0 {
		t.Fatal("Generate of a signing key returned no public key")
	}
	return k
}

func ref(k sdk.GeneratedKey) sdk.KeyRef { return sdk.KeyRef{Handle: k.Handle, Material: k.Material} }

func cryptoEmptyBatches(t T, b sdk.CryptoBackend) {
	ctx := context.Background()
	if rs, err := b.Encrypt(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty Encrypt: %d results, %v", len(rs), err)
	}
	if rs, err := b.Decrypt(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty Decrypt: %d results, %v", len(rs), err)
	}
	if rs, err := b.Sign(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty Sign: %d results, %v", len(rs), err)
	}
	if rs, err := b.Verify(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty Verify: %d results, %v", len(rs), err)
	}
	if rs, err := b.HMAC(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty HMAC: %d results, %v", len(rs), err)
	}
}

// unknownRef is a key reference no backend has issued: a random handle
// (and, for a backend that keeps no material, random material).
func unknownRef(like sdk.KeyRef) sdk.KeyRef {
	h := make([]byte, max(len(like.Handle), 16))
	_, _ = rand.Read(h)
	var m []byte
	if len(like.Material) > 0 {
		m = make([]byte, len(like.Material))
		_, _ = rand.Read(m)
	}
	return sdk.KeyRef{Handle: h, Material: m}
}

func cryptoEncryptDecrypt(t T, b sdk.CryptoBackend, k1, k2 sdk.KeyRef) {
	ctx := context.Background()
	big := bytes.Repeat([]byte{0xab}, 1<<20)
	plains := [][]byte{[]byte("hello"), {}, big, []byte("hello")}
	items := make([]sdk.EncryptItem, len(plains))
	for i, p := range plains {
		items[i] = sdk.EncryptItem{Key: k1, Plaintext: p, AssocData: []byte(fmt.Sprint("ctx", i))}
	}
	// One broken item in the batch fails alone.
	items = append(items, sdk.EncryptItem{Key: unknownRef(k1), Plaintext: []byte("x")})
	enc, err := b.Encrypt(ctx, items)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if len(enc) != len(items) {
		t.Fatalf("Encrypt of %d items returned %d results", len(items), len(enc))
	}
	if enc[len(enc)-1].Err == nil {
		t.Fatal("Encrypt with a key the backend never issued succeeded")
	}
	for i := range plains {
		if enc[i].Err != nil {
			t.Fatalf("Encrypt item %d: %v", i, enc[i].Err)
		}
		if bytes.Contains(enc[i].Ciphertext, []byte("hello")) {
			t.Fatalf("ciphertext %d contains the plaintext", i)
		}
	}
	if bytes.Equal(enc[0].Ciphertext, enc[3].Ciphertext) {
		t.Fatal("two encryptions of the same plaintext are equal (nonce reuse?)")
	}
	tamperedEnd := bytes.Clone(enc[0].Ciphertext)
	tamperedEnd[len(tamperedEnd)-1] ^= 1
	tamperedStart := bytes.Clone(enc[0].Ciphertext)
	tamperedStart[0] ^= 0x80
	truncated := enc[0].Ciphertext[:len(enc[0].Ciphertext)-1]
	dec, err := b.Decrypt(ctx, []sdk.DecryptItem{
		{Key: k1, Ciphertext: enc[0].Ciphertext, AssocData: []byte("ctx0")},
		{Key: k1, Ciphertext: enc[1].Ciphertext, AssocData: []byte("ctx1")},
		{Key: k1, Ciphertext: enc[2].Ciphertext, AssocData: []byte("ctx2")},
		{Key: k1, Ciphertext: enc[0].Ciphertext, AssocData: []byte("other context")},
		{Key: k1, Ciphertext: tamperedEnd, AssocData: []byte("ctx0")},
		{Key: k2, Ciphertext: enc[0].Ciphertext, AssocData: []byte("ctx0")},
		{Key: k1, Ciphertext: []byte("short")},
		{Key: k1, Ciphertext: tamperedStart, AssocData: []byte("ctx0")},
		{Key: k1, Ciphertext: truncated, AssocData: []byte("ctx0")},
		{Key: k1, Ciphertext: enc[0].Ciphertext},
		{Key: k1, Ciphertext: nil},
	})
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if len(dec) != 11 {
		t.Fatalf("Decrypt of 11 items returned %d results", len(dec))
	}
	for i, want := range plains[:3] {
		if dec[i].Err != nil || !bytes.Equal(dec[i].Plaintext, want) {
			t.Fatalf("Decrypt item %d: %d bytes, %v", i, len(dec[i].Plaintext), dec[i].Err)
		}
	}
	for i, what := range map[int]string{
		3: "wrong associated data", 4: "a ciphertext with its last byte changed", 5: "the wrong key",
		6: "a too short ciphertext", 7: "a ciphertext with its first byte changed", 8: "a truncated ciphertext",
		9: "the associated data missing", 10: "an empty ciphertext",
	} {
		if dec[i].Err == nil {
			t.Errorf("Decrypt with %s succeeded", what)
		}
		if dec[i].Plaintext != nil {
			t.Errorf("Decrypt with %s returned plaintext alongside its error", what)
		}
	}
}

func cryptoSignVerify(t T, b sdk.CryptoBackend, gk sdk.GeneratedKey, k1, k2 sdk.KeyRef) {
	ctx := context.Background()
	msgs := [][]byte{[]byte("message"), {}, bytes.Repeat([]byte("m"), 1<<16)}
	items := make([]sdk.SignItem, len(msgs))
	for i, m := range msgs {
		items[i] = sdk.SignItem{Key: k1, Message: m}
	}
	sigs, err := b.Sign(ctx, items)
	if err != nil || len(sigs) != len(items) {
		t.Fatalf("Sign: %d results, %v", len(sigs), err)
	}
	for i, s := range sigs {
		if s.Err != nil {
			t.Fatalf("Sign item %d: %v", i, s.Err)
		}
	}
	if len(gk.PublicKey) == ed25519.PublicKeySize && !ed25519.Verify(gk.PublicKey, msgs[0], sigs[0].Signature) {
		t.Fatal("the signature does not verify with the public key from Generate")
	}
	bad := bytes.Clone(sigs[0].Signature)
	bad[0] ^= 1
	vs, err := b.Verify(ctx, []sdk.VerifyItem{
		{Key: k1, Message: msgs[0], Signature: sigs[0].Signature},
		{Key: k1, Message: msgs[1], Signature: sigs[1].Signature},
		{Key: k1, Message: msgs[2], Signature: sigs[2].Signature},
		{Key: k1, Message: []byte("other"), Signature: sigs[0].Signature},
		{Key: k1, Message: msgs[0], Signature: bad},
		{Key: k2, Message: msgs[0], Signature: sigs[0].Signature},
		{Key: k1, Message: msgs[0], Signature: []byte("short")},
		{Key: k1, Message: msgs[0], Signature: nil},
	})
	if err != nil || len(vs) != 8 {
		t.Fatalf("Verify: %d results, %v", len(vs), err)
	}
	for i := 0; i < 3; i++ {
		if vs[i].Err != nil || !vs[i].Valid {
			t.Fatalf("Verify item %d: valid=%v err=%v", i, vs[i].Valid, vs[i].Err)
		}
	}
	for i := 3; i < 8; i++ {
		if vs[i].Valid {
			t.Errorf("Verify item %d (a wrong message, signature or key) is valid", i)
		}
	}
}

func cryptoHMAC(t T, b sdk.CryptoBackend, k1, k2 sdk.KeyRef) {
	ctx := context.Background()
	rs, err := b.HMAC(ctx, []sdk.HMACItem{
		{Key: k1, Message: []byte("m")},
		{Key: k1, Message: []byte("m")},
		{Key: k1, Message: []byte("n")},
		{Key: k2, Message: []byte("m")},
		{Key: k1, Message: nil},
		{Key: k1, Message: bytes.Repeat([]byte("m"), 1<<16)},
	})
	if err != nil || len(rs) != 6 {
		t.Fatalf("HMAC: %d results, %v", len(rs), err)
	}
	for i, r := range rs {
		if r.Err != nil || len(r.MAC) < 16 {
			t.Fatalf("HMAC item %d: %d bytes, %v", i, len(r.MAC), r.Err)
		}
	}
	if !bytes.Equal(rs[0].MAC, rs[1].MAC) {
		t.Fatal("HMAC is not deterministic")
	}
	if bytes.Equal(rs[0].MAC, rs[2].MAC) || bytes.Equal(rs[0].MAC, rs[3].MAC) {
		t.Fatal("HMAC of another message or key is the same")
	}
}

// usage is the operation pair the generic checks (order, batches,
// concurrency, unknown keys) exercise for a key type.
type usage string

const (
	useEncrypt usage = "encrypt/decrypt"
	useSign    usage = "sign/verify"
	useHMAC    usage = "hmac"
)

func usageOf(kt sdk.KeyTypeCapability) usage {
	switch {
	case kt.Supports(sdk.OpEncrypt) && kt.Supports(sdk.OpDecrypt):
		return useEncrypt
	case kt.Supports(sdk.OpSign) && kt.Supports(sdk.OpVerify):
		return useSign
	case kt.Supports(sdk.OpHMAC):
		return useHMAC
	}
	return ""
}

// use runs one batch of the usage over keys[i] and msgs[i] and checks
// each item's answer by a second batch in reverse order (decrypt after
// encrypt, verify after sign, the same MAC again). It returns one error
// per item (nil when the item round-tripped) and the error of a whole
// call.
func use(ctx context.Context, b sdk.CryptoBackend, u usage, keys []sdk.KeyRef, msgs [][]byte) ([]error, error) {
	n := len(keys)
	errs := make([]error, n)
	rev := func(i int) int { return n - 1 - i }
	switch u {
	case useEncrypt:
		items := make([]sdk.EncryptItem, n)
		for i := range items {
			items[i] = sdk.EncryptItem{Key: keys[i], Plaintext: msgs[i], AssocData: []byte(fmt.Sprint("aad", i))}
		}
		enc, err := b.Encrypt(ctx, items)
		if err != nil {
			return nil, fmt.Errorf("Encrypt: %w", err)
		}
		if len(enc) != n {
			return nil, fmt.Errorf("Encrypt of %d items returned %d results", n, len(enc))
		}
		ditems := make([]sdk.DecryptItem, n)
		for i := range ditems {
			j := rev(i)
			ditems[i] = sdk.DecryptItem{Key: keys[j], Ciphertext: enc[j].Ciphertext, AssocData: []byte(fmt.Sprint("aad", j))}
		}
		dec, err := b.Decrypt(ctx, ditems)
		if err != nil {
			return nil, fmt.Errorf("Decrypt: %w", err)
		}
		if len(dec) != n {
			return nil, fmt.Errorf("Decrypt of %d items returned %d results", n, len(dec))
		}
		for i := range errs {
			d := dec[rev(i)]
			switch {
			case enc[i].Err != nil:
				errs[i] = enc[i].Err
			case d.Err != nil:
				errs[i] = fmt.Errorf("decrypting what item %d encrypted: %w", i, d.Err)
			case !bytes.Equal(d.Plaintext, msgs[i]):
				errs[i] = fmt.Errorf("item %d decrypted to another plaintext (%d bytes, want %d): results out of order?", i, len(d.Plaintext), len(msgs[i]))
			}
		}
	case useSign:
		items := make([]sdk.SignItem, n)
		for i := range items {
			items[i] = sdk.SignItem{Key: keys[i], Message: msgs[i]}
		}
		sigs, err := b.Sign(ctx, items)
		if err != nil {
			return nil, fmt.Errorf("Sign: %w", err)
		}
		if len(sigs) != n {
			return nil, fmt.Errorf("Sign of %d items returned %d results", n, len(sigs))
		}
		vitems := make([]sdk.VerifyItem, n)
		for i := range vitems {
			j := rev(i)
			vitems[i] = sdk.VerifyItem{Key: keys[j], Message: msgs[j], Signature: sigs[j].Signature}
		}
		vs, err := b.Verify(ctx, vitems)
		if err != nil {
			return nil, fmt.Errorf("Verify: %w", err)
		}
		if len(vs) != n {
			return nil, fmt.Errorf("Verify of %d items returned %d results", n, len(vs))
		}
		for i := range errs {
			v := vs[rev(i)]
			switch {
			case sigs[i].Err != nil:
				errs[i] = sigs[i].Err
			case v.Err != nil:
				errs[i] = fmt.Errorf("verifying what item %d signed: %w", i, v.Err)
			case !v.Valid:
				errs[i] = fmt.Errorf("the signature of item %d does not verify: results out of order?", i)
			}
		}
	case useHMAC:
		items := make([]sdk.HMACItem, n)
		ritems := make([]sdk.HMACItem, n)
		for i := range items {
			items[i] = sdk.HMACItem{Key: keys[i], Message: msgs[i]}
			ritems[rev(i)] = items[i]
		}
		macs, err := b.HMAC(ctx, items)
		if err != nil {
			return nil, fmt.Errorf("HMAC: %w", err)
		}
		again, err := b.HMAC(ctx, ritems)
		if err != nil {
			return nil, fmt.Errorf("HMAC: %w", err)
		}
		if len(macs) != n || len(again) != n {
			return nil, fmt.Errorf("HMAC of %d items returned %d and %d results", n, len(macs), len(again))
		}
		for i := range errs {
			switch {
			case macs[i].Err != nil:
				errs[i] = macs[i].Err
			case again[rev(i)].Err != nil:
				errs[i] = again[rev(i)].Err
			case !bytes.Equal(macs[i].MAC, again[rev(i)].MAC):
				errs[i] = fmt.Errorf("item %d has another MAC in a batch in the reverse order: results out of order?", i)
			}
		}
	}
	return errs, nil
}

// distinctMsgs returns n messages that differ from each other.
func distinctMsgs(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		m := bytes.Repeat([]byte{byte(i)}, size)
		copy(m, fmt.Sprintf("message %d;", i))
		out[i] = m
	}
	return out
}

func cryptoInOrder(t T, b sdk.CryptoBackend, u usage, k1, k2 sdk.KeyRef) {
	// Items alternate between two keys and have different sizes, so an
	// answer given to the wrong item does not check out.
	const n = 50
	keys := make([]sdk.KeyRef, n)
	msgs := make([][]byte, n)
	for i := range keys {
		keys[i] = k1
		if i%3 == 1 {
			keys[i] = k2
		}
		msgs[i] = bytes.Repeat([]byte{byte(i)}, 1+i*7)
	}
	errs, err := use(context.Background(), b, u, keys, msgs)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, e := range errs {
		if e != nil {
			if bad++; bad <= 3 {
				t.Errorf("item %d: %v", i, e)
			}
		}
	}
	if bad > 3 {
		t.Errorf("... %d of %d items failed", bad, n)
	}
}

func cryptoUnknownKey(t T, b sdk.CryptoBackend, u usage, caps sdk.Capabilities, k1, k2 sdk.KeyRef) {
	bad := []sdk.KeyRef{unknownRef(k1), {Handle: k1.Handle[:len(k1.Handle)-1], Material: k1.Material}}
	what := []string{"a key the backend never issued", "a truncated handle"}
	if !caps.KeepsMaterial {
		// Material is bound to its handle: another key's material under
		// this handle is a mix-up, not a key.
		bad = append(bad, sdk.KeyRef{Handle: k1.Handle, Material: k2.Material})
		what = append(what, "the handle of one key with the material of another")
	}
	for i, k := range bad {
		keys := []sdk.KeyRef{k1, k, k1}
		errs, err := use(context.Background(), b, u, keys, distinctMsgs(3, 20))
		if err != nil {
			t.Errorf("%s in a batch failed the whole call (want an error for that item alone): %v", what[i], err)
			continue
		}
		if errs[1] == nil {
			t.Errorf("using %s succeeded", what[i])
		}
		if errs[0] != nil || errs[2] != nil {
			t.Errorf("with %s in the batch, the good items failed: %v, %v", what[i], errs[0], errs[2])
		}
	}
}

func cryptoLargeBatch(t T, b sdk.CryptoBackend, u usage, k sdk.KeyRef) {
	keys := make([]sdk.KeyRef, largeBatch)
	for i := range keys {
		keys[i] = k
	}
	errs, err := use(context.Background(), b, u, keys, distinctMsgs(largeBatch, 64))
	if err != nil {
		t.Fatalf("a batch of %d items: %v", largeBatch, err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("a batch of %d items: item %d: %v", largeBatch, i, e)
		}
	}
}

func cryptoConcurrent(t T, b sdk.CryptoBackend, u usage, k1, k2 sdk.KeyRef) {
	var wg sync.WaitGroup
	errc := make(chan error, concurrentCalls)
	for w := 0; w < concurrentCalls; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < callsPerWorker; c++ {
				keys := []sdk.KeyRef{k1, k2, k1, k2}
				msgs := distinctMsgs(4, 32)
				for i := range msgs {
					msgs[i][len(msgs[i])-1] = byte(w)
					msgs[i][len(msgs[i])-2] = byte(c)
				}
				errs, err := use(context.Background(), b, u, keys, msgs)
				if err == nil {
					for i, e := range errs {
						if e != nil {
							err = fmt.Errorf("item %d: %w", i, e)
							break
						}
					}
				}
				if err != nil {
					errc <- fmt.Errorf("worker %d, call %d: %w", w, c, err)
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

func cryptoUnsupported(t T, b sdk.CryptoBackend, kt sdk.KeyTypeCapability, k sdk.KeyRef) {
	ctx := context.Background()
	check := func(op sdk.Operation, n int, itemErr func(int) error, err error) {
		t.Helper()
		if kt.Supports(op) {
			return
		}
		if err != nil {
			return // refusing the whole call is allowed too
		}
		if n != 1 || itemErr(0) == nil {
			t.Errorf("%s with a %s key succeeded", op, kt.KeyType)
		}
	}
	enc, err := b.Encrypt(ctx, []sdk.EncryptItem{{Key: k, Plaintext: []byte("x")}})
	check(sdk.OpEncrypt, len(enc), func(i int) error { return enc[i].Err }, err)
	dec, err := b.Decrypt(ctx, []sdk.DecryptItem{{Key: k, Ciphertext: bytes.Repeat([]byte{1}, 64)}})
	check(sdk.OpDecrypt, len(dec), func(i int) error { return dec[i].Err }, err)
	sig, err := b.Sign(ctx, []sdk.SignItem{{Key: k, Message: []byte("x")}})
	check(sdk.OpSign, len(sig), func(i int) error { return sig[i].Err }, err)
	ver, err := b.Verify(ctx, []sdk.VerifyItem{{Key: k, Message: []byte("x"), Signature: bytes.Repeat([]byte{1}, 64)}})
	check(sdk.OpVerify, len(ver), func(i int) error { return ver[i].Err }, err)
	mac, err := b.HMAC(ctx, []sdk.HMACItem{{Key: k, Message: []byte("x")}})
	check(sdk.OpHMAC, len(mac), func(i int) error { return mac[i].Err }, err)
}

// cryptoDestroy destroys k2. A backend that keeps material must refuse
// k2 afterwards and still serve k1; one that keeps none has nothing to
// forget (the node drops the wrapped material).
func cryptoDestroy(t T, b sdk.CryptoBackend, caps sdk.Capabilities, kt sdk.KeyTypeCapability, k1, k2 sdk.KeyRef) {
	ctx := context.Background()
	if err := b.Destroy(ctx, k2); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	u := usageOf(kt)
	if !caps.KeepsMaterial || u == "" {
		return
	}
	errs, err := use(ctx, b, u, []sdk.KeyRef{k1, k2}, distinctMsgs(2, 16))
	if err != nil {
		t.Fatalf("using a destroyed key failed the whole call (want an error for that item alone): %v", err)
	}
	if errs[0] != nil {
		t.Errorf("after destroying another key, the key that remains fails: %v", errs[0])
	}
	if errs[1] == nil {
		t.Error("a destroyed key still works")
	}
}
