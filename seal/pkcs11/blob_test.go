package pkcs11

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/keyraft/keyraft/seal"
)

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func sampleGCMBlob() []byte {
	b := &blob{mech: mechAESGCM, label: "keyraft-root", iv: bytes.Repeat([]byte{7}, gcmIVSize), ct: bytes.Repeat([]byte{9}, 32+gcmTagSize)}
	return b.marshal()
}

func sampleRSABlob() []byte {
	b := &blob{mech: mechRSAOAEP, label: "k", ct: bytes.Repeat([]byte{5}, 384)}
	return b.marshal()
}

func TestParseBlob(t *testing.T) {
	for _, good := range [][]byte{sampleGCMBlob(), sampleRSABlob()} {
		b, err := parseBlob(good)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.marshal(), good) {
			t.Fatal("parse/marshal is not the identity")
		}
	}
	g := sampleGCMBlob()
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"short":          {1, 1},
		"version":        append([]byte{2}, g[1:]...),
		"mechanism":      append([]byte{1, 3}, g[2:]...),
		"empty label":    {1, 1, 0, 1, 2, 3},
		"label overruns": {1, 1, 200, 'a'},
		"no iv":          g[:3+12+5],
		"tag only":       g[:3+12+12+gcmTagSize],
		"rsa short":      append([]byte{1, 2, 1, 'k'}, make([]byte, 100)...),
		"rsa long":       append([]byte{1, 2, 1, 'k'}, make([]byte, 1025)...),
		"gcm long":       append(append([]byte{1, 1, 1, 'k'}, make([]byte, 12)...), make([]byte, maxPlaintext+gcmTagSize+1)...),
	} {
		if _, err := parseBlob(bad); !errors.Is(err, ErrBlob) || !errors.Is(err, seal.ErrDecrypt) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzParseBlob(f *testing.F) {
	f.Add(sampleGCMBlob())
	f.Add(sampleRSABlob())
	f.Add([]byte{1, 1, 1, 'k'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := parseBlob(data)
		if err != nil {
			if !errors.Is(err, ErrBlob) {
				t.Fatalf("error does not wrap ErrBlob: %v", err)
			}
			return
		}
		if !bytes.Equal(b.marshal(), data) {
			t.Fatalf("accepted %x but re-encodes as %x", data, b.marshal())
		}
		if b.mech == mechAESGCM && len(b.iv) != gcmIVSize {
			t.Fatalf("accepted a %d-byte IV", len(b.iv))
		}
		if len(b.label) == 0 || len(b.ct) == 0 {
			t.Fatal("accepted an empty label or ciphertext")
		}
		if !bytes.HasPrefix(b.aad(), gcmAADPrefix) || !bytes.HasSuffix(b.aad(), data[:3+len(b.label)]) {
			t.Fatal("AAD is not prefix || header")
		}
	})
}
