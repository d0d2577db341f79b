package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keyraft/keyraft/cluster/link"
)

// identityFile holds what a node needs to take part in the cluster while
// sealed: its cluster certificate and key, the CA it trusts, and the
// gossip key. It is node-local (never replicated) and mode 0600. None of
// it decrypts a stored value: the cluster port and gossip carry barrier
// ciphertext, status and addresses only.
const identityFile = "node-identity.json"

type localIdentity struct {
	TLS       link.Identity `json:"tls"`
	GossipKey []byte        `json:"gossip_key"`
	// GossipPeers are gossip addresses of members last seen, tried when
	// the node starts again.
	GossipPeers []string `json:"gossip_peers,omitempty"`
}

// loadIdentity reads the node's identity; (nil, nil) when it has none.
func loadIdentity(dir string) (*localIdentity, error) {
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseIdentity(b)
}

// parseIdentity checks an identity file's content completely.
func parseIdentity(b []byte) (*localIdentity, error) {
	var id localIdentity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("cluster: %s is damaged: %v", identityFile, err)
	}
	if _, _, err := id.TLS.TLS(); err != nil {
		return nil, fmt.Errorf("cluster: %s: %v", identityFile, err)
	}
	if len(id.GossipKey) != 32 {
		return nil, fmt.Errorf("cluster: %s: gossip key must be 32 bytes", identityFile)
	}
	return &id, nil
}

// saveIdentity writes the identity atomically (temp file, fsync, rename,
// fsync of the directory), so a crash leaves the old file or the new one.
func saveIdentity(dir string, id *localIdentity) error {
	b, err := json.Marshal(id)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, identityFile)
	tmp, err := os.CreateTemp(dir, identityFile+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
