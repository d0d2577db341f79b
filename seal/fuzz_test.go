package seal

import (
	"testing"
	"time"
)

func FuzzBarrierDecrypt(f *testing.F) {
	k, _ := NewKeyring(time.Unix(0, 0))
	ct, _ := k.Encrypt([]byte("a"), []byte("hello"))
	f.Add(ct)
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := k.Decrypt([]byte("a"), b); err == nil && string(b) != string(ct) {
			t.Fatalf("forged value decrypted: %x", b)
		}
	})
}

func FuzzUnmarshalKeyring(f *testing.F) {
	k, _ := NewKeyring(time.Unix(0, 0))
	b, _ := k.marshal()
	f.Add(b)
	f.Add([]byte(`{"active":1,"terms":[{"term":1,"key":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := unmarshalKeyring(b)
		if err != nil {
			return
		}
		// A keyring that loads must be usable.
		ct, err := k.Encrypt(nil, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Decrypt(nil, ct); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzCombine(f *testing.F) {
	f.Add([]byte{1, 2, 3}, []byte{4, 5, 6})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		Combine([][]byte{a, b})
	})
}
