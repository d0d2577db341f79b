package host_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyraft/keyraft/plugins"
)

// A real bolt plugin process compacts its file on request, through the
// host's storage and through the durable wrapper the node uses.
func TestCompactRealPlugin(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	c, _ := startBolt(t, db, nil)
	secret := make([]byte, 4096)
	rand.Read(secret)
	for _, s := range []plugins.Storage{c.Storage(), c.DurableStorage()} {
		if err := s.Write([]plugins.Mutation{put("k", string(secret))}); err != nil {
			t.Fatal(err)
		}
		if err := s.Write([]plugins.Mutation{put("k", "destroyed")}); err != nil {
			t.Fatal(err)
		}
		if raw, _ := os.ReadFile(db); !bytes.Contains(raw, secret) {
			t.Fatal("the overwritten value is not in the file before Compact (bbolt reused the page?)")
		}
		comp, ok := s.(plugins.Compactor)
		if !ok {
			t.Fatalf("%T is not a plugins.Compactor", s)
		}
		if err := comp.Compact(); err != nil {
			t.Fatal(err)
		}
		if raw, _ := os.ReadFile(db); bytes.Contains(raw, secret) {
			t.Fatal("the overwritten value is still in the file after Compact")
		}
		if v, err := s.Get([]byte("k")); err != nil || string(v) != "destroyed" {
			t.Fatalf("after Compact: %q %v", v, err)
		}
		rand.Read(secret)
	}
}
