package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/keyraft/keyraft/internal/testwait"
)

// TestHTTPSClusterJoinsWithPrivateCA follows the README: certificates
// made by 'keyraft operator tls', two nodes with https listeners, and the
// second joins the first through retry_join's leader_ca_cert_file,
// leader_client_cert_file, leader_client_key_file and
// leader_tls_servername, with no SSL_CERT_FILE or other trust outside
// the config. Node 1's certificate names only a DNS name, so the join
// verifies it only through leader_tls_servername.
func TestHTTPSClusterJoinsWithPrivateCA(t *testing.T) {
	pki := t.TempDir()
	tlsCmd := func(args ...string) {
		t.Helper()
		out, err := exec.Command(keyraftBin, append([]string{"operator", "tls"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("keyraft operator tls %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	tlsCmd("ca", "-dir", pki)
	ca := filepath.Join(pki, "ca.pem")
	const n1Name = "node-1.keyraft.test"
	tlsCmd("cert", "-ca", ca, "-host", n1Name, "-dir", pki, "-name", "n1")
	tlsCmd("cert", "-ca", ca, "-host", "127.0.0.1", "-dir", pki, "-name", "n2")

	n1, n2 := newConfigNode(t), newConfigNode(t)
	retryJoin := fmt.Sprintf(`
  retry_join {
    leader_api_addr         = "https://127.0.0.1:%d"
    leader_ca_cert_file     = %q
    leader_client_cert_file = %q
    leader_client_key_file  = %q
    leader_tls_servername   = %q
  }`, n1.apiPort, ca, filepath.Join(pki, "n2.pem"), filepath.Join(pki, "n2-key.pem"), n1Name)
	for i, n := range []*node{n1, n2} {
		n.nodeID = fmt.Sprintf("n%d", i+1)
		storage := ""
		if i == 1 {
			storage = retryJoin
		}
		n.addr = fmt.Sprintf("https://127.0.0.1:%d", n.apiPort)
		n.writeConfig(fmt.Sprintf(`storage "raft" {
  path           = %q
  node_id        = %q
  gossip_address = "127.0.0.1:%d"
  autopilot {
    server_stabilization_time = "1s"
  }
%s
}
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_cert_file   = %q
  tls_key_file    = %q
}
api_addr = %q
`, n.dataDir, n.nodeID, n.gossipPort, storage, n.apiPort, n.clusterPort,
			filepath.Join(pki, n.nodeID+".pem"), filepath.Join(pki, n.nodeID+"-key.pem"), n.addr))
		for _, e := range n.env {
			if strings.HasPrefix(e, "SSL_CERT") {
				t.Fatalf("the node's environment has %s", e)
			}
		}
	}
	// Clients of the test trust the CA explicitly, and reach node 1 by
	// the name in its certificate.
	client := func(n *node, serverName, token string) *vault.Client {
		t.Helper()
		cfg := vault.DefaultConfig()
		cfg.Address = n.addr
		cfg.MaxRetries = 0
		cfg.Timeout = 30 * time.Second
		if err := cfg.ConfigureTLS(&vault.TLSConfig{CACert: ca, TLSServerName: serverName}); err != nil {
			t.Fatal(err)
		}
		c, err := vault.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken(token)
		return c
	}
	start := func(n *node, c *vault.Client) {
		t.Helper()
		n.noWait = true
		if err := n.launch(); err != nil {
			t.Fatal(err)
		}
		testwait.Within(t, startDeadline, n.nodeID+"'s https API to answer", func() bool {
			_, err := c.Sys().SealStatus()
			return err == nil || !n.running()
		})
		if !n.running() {
			t.Fatalf("%s exited", n.nodeID)
		}
	}

	c1 := client(n1, n1Name, "")
	start(n1, c1)
	init, err := c1.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c1.Sys().Unseal(init.KeysB64[0]); err != nil || st.Sealed {
		t.Fatalf("unsealing n1: %+v, %v", st, err)
	}
	n1.waitLeaderWith(c1)

	c2 := client(n2, "", "")
	start(n2, c2)
	// The join's challenge arrived (over https, with the config's CA and
	// client certificate) when node 2 knows the cluster's seal.
	testwait.Within(t, leaderWait, "n2 to receive its join challenge", func() bool {
		st, err := c2.Sys().SealStatus()
		return err == nil && st.Initialized && st.T == 1
	})
	if st, err := c2.Sys().Unseal(init.KeysB64[0]); err != nil || st.Sealed {
		t.Fatalf("unsealing n2: %+v, %v", st, err)
	}
	root := client(n1, n1Name, init.RootToken)
	testwait.Within(t, leaderWait, "n2 to be a voter", func() bool {
		s, err := root.Logical().Read("sys/storage/raft/configuration")
		if err != nil || s == nil {
			return false
		}
		servers, _ := s.Data["config"].(map[string]any)["servers"].([]any)
		for _, v := range servers {
			if m, _ := v.(map[string]any); m["node_id"] == "n2" && m["voter"] == true {
				return true
			}
		}
		return false
	})
	// Node 2 serves what node 1 wrote.
	if _, err := root.Logical().Write("transit/keys/tls-join", nil); err != nil {
		t.Fatal(err)
	}
	ct := encrypt(t, root, "tls-join", []byte("over https"))
	c2.SetToken(init.RootToken)
	testwait.Within(t, leaderWait, "n2 to decrypt", func() bool {
		s, err := c2.Logical().Write("transit/decrypt/tls-join", map[string]any{"ciphertext": ct})
		return err == nil && s != nil && s.Data["plaintext"] == b64([]byte("over https"))
	})
}

// waitLeaderWith is waitLeader through the client c (an https node).
func (n *node) waitLeaderWith(c *vault.Client) {
	n.t.Helper()
	testwait.Within(n.t, leaderWait, n.nodeID+" to become leader", func() bool {
		l, err := c.Sys().Leader()
		return err == nil && l.IsSelf
	})
}
