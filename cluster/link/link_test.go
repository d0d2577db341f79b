package link

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/plugins/bolt"
)

func newLink(t *testing.T, ca *ClusterCA, cert tls.Certificate) *ClusterLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewClusterLink(ln, nil, hclog.NewNullLogger())
	l.SetCredentials(cert, ca.Pool())
	t.Cleanup(func() { l.Close() })
	return l
}

func issue(t *testing.T, ca *ClusterCA, id string) tls.Certificate {
	t.Helper()
	c, err := ca.IssueNode(id, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Two Raft nodes replicate over the mutual-TLS cluster link, with real
// state machines on bbolt.
func TestRaftOverClusterLink(t *testing.T) {
	ca, err := NewClusterCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	type member struct {
		link *ClusterLink
		fsm  *fsm.FSM
		raft *raft.Raft
	}
	var ms []*member
	for _, id := range []string{"n1", "n2"} {
		m := &member{link: newLink(t, ca, issue(t, ca, id))}
		st, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if m.fsm, err = fsm.New(st); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	servers := []raft.Server{
		{ID: "n1", Address: raft.ServerAddress(ms[0].link.advertise.String())},
		{ID: "n2", Address: raft.ServerAddress(ms[1].link.advertise.String())},
	}
	for i, m := range ms {
		c := raft.DefaultConfig()
		c.LocalID = servers[i].ID
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 150*time.Millisecond, 150*time.Millisecond, 100*time.Millisecond
		c.Logger = hclog.NewNullLogger()
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: m.link.Layer(ProtoRaft), MaxPool: 3, Timeout: 5 * time.Second, Logger: hclog.NewNullLogger(),
		})
		store := raft.NewInmemStore()
		r, err := raft.NewRaft(c, m.fsm, store, store, raft.NewInmemSnapshotStore(), trans)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Shutdown().Error() })
		if i == 0 {
			if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
				t.Fatal(err)
			}
		}
		m.raft = r
	}
	deadline := time.Now().Add(20 * time.Second)
	var leader *member
	testwait.Within(t, time.Until(deadline), "a leader elected over the cluster link", func() bool {
		for _, m := range ms {
			if m.raft.State() == raft.Leader {
				leader = m
			}
		}
		return leader != nil
	})
	cmd, _ := (&fsm.Command{Ops: []fsm.Op{{Kind: fsm.OpPut, Key: "k", Value: []byte("v")}}}).Encode()
	f := leader.raft.Apply(cmd, 5*time.Second)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	idx := f.Index()
	for _, m := range ms {
		select {
		case <-m.fsm.WaitApplied(idx):
		case <-time.After(20 * time.Second):
			t.Fatal("a member never applied the entry")
		}
		if v, _, _ := m.fsm.Get("k"); string(v) != "v" {
			t.Fatalf("member state: %q", v)
		}
	}
}

func TestClusterLinkRefusesStrangers(t *testing.T) {
	ca, _ := NewClusterCA("test", time.Now())
	other, _ := NewClusterCA("other", time.Now())
	link := newLink(t, ca, issue(t, ca, "n1"))
	addr := link.advertise.String()
	dial := func(cfg *tls.Config) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3 client certificates are checked after the client's
		// handshake returns: a refused client sees it on first read.
		// An accepted connection just waits (the link queues it), so the
		// read times out: that means the stranger got in.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		return err
	}
	base := func() *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool(), ServerName: ClusterServerName, NextProtos: []string{ProtoRaft}}
	}
	member := base()
	member.Certificates = []tls.Certificate{issue(t, ca, "n2")}
	if err := dial(member); err != nil {
		t.Fatalf("a member was refused: %v", err)
	}
	noCert := base()
	if err := dial(noCert); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	foreign := base()
	foreign.Certificates = []tls.Certificate{issue(t, other, "intruder")}
	if err := dial(foreign); err == nil {
		t.Fatal("a client with another CA's certificate was accepted")
	}
	expired, _ := ca.IssueNode("old", time.Now().Add(-2*time.Hour), time.Hour)
	old := base()
	old.Certificates = []tls.Certificate{expired}
	if err := dial(old); err == nil {
		t.Fatal("a client with an expired certificate was accepted")
	}
	wrongProto := base()
	wrongProto.Certificates = []tls.Certificate{issue(t, ca, "n2")}
	wrongProto.NextProtos = []string{"http/1.1"}
	if err := dial(wrongProto); err == nil {
		t.Fatal("a connection for an unknown protocol was accepted")
	}
	// The server side must be verified too: a node of another cluster
	// cannot pose as this one.
	impostor := newLink(t, other, issue(t, other, "n9"))
	me := newLink(t, ca, issue(t, ca, "n2"))
	if _, err := me.Dial(ProtoRaft, impostor.advertise.String(), 5*time.Second); err == nil {
		t.Fatal("dialed a node of another cluster")
	}

	// A member's forward channel works beside Raft on the same port.
	peer := newLink(t, ca, issue(t, ca, "n3"))
	go func() {
		c, err := link.Layer(ProtoForward).Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	c, err := peer.Dial(ProtoForward, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("forward channel echo: %q %v", buf, err)
	}
}

// A node that has no certificate yet (not initialized, not joined)
// neither accepts nor dials; installing credentials opens the port.
func TestClusterLinkWithoutCredentials(t *testing.T) {
	ca, _ := NewClusterCA("test", time.Now())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bare := NewClusterLink(ln, nil, hclog.NewNullLogger())
	t.Cleanup(func() { bare.Close() })
	if _, err := bare.Dial(ProtoRaft, "127.0.0.1:1", time.Second); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("dial without credentials: %v, want ErrNoCredentials", err)
	}
	member := newLink(t, ca, issue(t, ca, "n2"))
	if _, err := member.Dial(ProtoRaft, bare.advertise.String(), 5*time.Second); err == nil {
		t.Fatal("a node without credentials accepted a connection")
	}
	id, err := ca.IssueIdentity("n1", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, pool, err := id.TLS()
	if err != nil {
		t.Fatal(err)
	}
	bare.SetCredentials(cert, pool)
	go func() {
		if c, err := bare.Layer(ProtoRaft).Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := member.Dial(ProtoRaft, bare.advertise.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial after credentials were installed: %v", err)
	}
	c.Close()
}

func TestSignCSR(t *testing.T) {
	ca, _ := NewClusterCA("test", time.Now())
	other, _ := NewClusterCA("other", time.Now())
	keyPEM, csrPEM, err := NewNodeKey("n4")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csrPEM, "n4", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := (Identity{CertPEM: certPEM, KeyPEM: keyPEM, CAPEM: ca.CertPEM}).TLS(); err != nil {
		t.Fatalf("signed identity: %v", err)
	}
	if _, _, err := (Identity{CertPEM: certPEM, KeyPEM: keyPEM, CAPEM: other.CertPEM}).TLS(); err == nil {
		t.Fatal("an identity accepted a CA that did not sign it")
	}
	otherKey, _, _ := NewNodeKey("n4")
	if _, _, err := (Identity{CertPEM: certPEM, KeyPEM: otherKey, CAPEM: ca.CertPEM}).TLS(); err == nil {
		t.Fatal("an identity accepted a key that does not match its certificate")
	}
	if _, err := ca.SignCSR(csrPEM, "n5", time.Now(), time.Hour); err == nil {
		t.Fatal("signed a request that names another node")
	}
	bad := append([]byte(nil), csrPEM...)
	for _, in := range [][]byte{nil, []byte("garbage"), keyPEM, bad[:len(bad)/2]} {
		if _, err := ca.SignCSR(in, "n4", time.Now(), time.Hour); err == nil {
			t.Fatalf("signed a malformed request %q", in)
		}
	}
}
