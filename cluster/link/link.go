package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// ALPN protocols multiplexed on the cluster port.
const (
	ProtoRaft    = "keyraft-raft/1"
	ProtoForward = "keyraft-forward/1"
)

// ErrLinkClosed is returned by Accept after Close.
var ErrLinkClosed = errors.New("link: cluster link closed")

// ClusterLink is the cluster port: one TCP listener speaking mutual TLS
// (TLS 1.3; both sides present a certificate signed by the cluster CA),
// with each connection handed to the channel its ALPN protocol names.
// Raft's NetworkTransport runs on Layer(ProtoRaft); write forwarding on
// another protocol over the same port.
type ClusterLink struct {
	ln        net.Listener
	advertise net.Addr
	creds     atomic.Pointer[credentials]
	peerCheck atomic.Pointer[func(string) error]
	dialFrom  net.Addr // local address outgoing connections bind to (nil: any)
	log       hclog.Logger

	mu     sync.Mutex
	queues map[string]chan net.Conn
	closed chan struct{}
	once   sync.Once
}

// ErrNoCredentials is returned by Dial before the node has a certificate
// (a node that is neither initialized nor joined); such a node also
// refuses every incoming connection.
var ErrNoCredentials = errors.New("link: this node has no cluster certificate yet")

type credentials struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// NewClusterLink serves mutual TLS on ln. advertise is the address peers
// dial (nil: ln's address). A link without credentials (see
// SetCredentials) refuses every connection.
func NewClusterLink(ln net.Listener, advertise net.Addr, logger hclog.Logger) *ClusterLink {
	if advertise == nil {
		advertise = ln.Addr()
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	l := &ClusterLink{ln: ln, advertise: advertise, log: logger,
		queues: map[string]chan net.Conn{ProtoRaft: make(chan net.Conn, 16), ProtoForward: make(chan net.Conn, 16)},
		closed: make(chan struct{})}
	// Outgoing connections leave from the listener's IP when it is a
	// specific one: on a multi-homed host peers then see the address they
	// know this node by (and test proxies can tell nodes apart).
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		l.dialFrom = &net.TCPAddr{IP: ta.IP}
	}
	go l.serve()
	return l
}

// SetCredentials installs (or replaces) the node certificate and the CA
// pool peers must chain to; new connections use them at once.
func (l *ClusterLink) SetCredentials(cert tls.Certificate, ca *x509.CertPool) {
	l.creds.Store(&credentials{cert: cert, pool: ca})
}

// SetPeerCheck installs a check of every incoming connection's peer, by
// the common name of its (already verified) certificate — the node ID. A
// node uses it to refuse nodes that are no longer members, whose
// certificates are still valid.
func (l *ClusterLink) SetPeerCheck(check func(nodeID string) error) { l.peerCheck.Store(&check) }

// HasCredentials reports whether SetCredentials was called.
func (l *ClusterLink) HasCredentials() bool { return l.creds.Load() != nil }

func (l *ClusterLink) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := l.creds.Load()
			if c == nil {
				return nil, ErrNoCredentials
			}
			cert := c.cert
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    c.pool,
				NextProtos:   []string{ProtoRaft, ProtoForward},
				Certificates: []tls.Certificate{cert},
				VerifyConnection: func(cs tls.ConnectionState) error {
					check := l.peerCheck.Load()
					if check == nil || len(cs.PeerCertificates) == 0 {
						return nil
					}
					return (*check)(cs.PeerCertificates[0].Subject.CommonName)
				},
			}, nil
		},
	}
}

func (l *ClusterLink) serve() {
	cfg := l.serverConfig()
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			l.log.Warn("cluster port accept failed", "error", err)
			time.Sleep(50 * time.Millisecond) // back off a failing listener (e.g. out of fds)
			continue
		}
		go l.handshake(tls.Server(raw, cfg))
	}
}

// handshake finishes TLS (bounded, so a silent peer cannot hold a
// goroutine) and routes the connection by its ALPN protocol.
func (l *ClusterLink) handshake(c *tls.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		l.log.Warn("refused a cluster connection", "remote", c.RemoteAddr(), "error", err)
		c.Close()
		return
	}
	q := l.queues[c.ConnectionState().NegotiatedProtocol]
	if q == nil {
		l.log.Warn("refused a cluster connection without a known protocol", "remote", c.RemoteAddr())
		c.Close()
		return
	}
	select {
	case q <- c:
	case <-l.closed:
		c.Close()
	}
}

// Dial opens a mutual-TLS connection for proto to a peer's cluster port.
func (l *ClusterLink) Dial(proto, address string, timeout time.Duration) (net.Conn, error) {
	c := l.creds.Load()
	if c == nil {
		return nil, ErrNoCredentials
	}
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: timeout, LocalAddr: l.dialFrom},
		Config: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			RootCAs:      c.pool,
			ServerName:   ClusterServerName,
			NextProtos:   []string{proto},
			Certificates: []tls.Certificate{c.cert},
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	if got := conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; got != proto {
		conn.Close()
		return nil, fmt.Errorf("link: %s does not speak %s (got %q)", address, proto, got)
	}
	return conn, nil
}

// Close stops the listener; connections already handed out stay open.
func (l *ClusterLink) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closed)
		err = l.ln.Close()
	})
	return err
}

// Layer returns the raft.StreamLayer for one protocol of the link.
func (l *ClusterLink) Layer(proto string) raft.StreamLayer {
	return &streamLayer{link: l, proto: proto}
}

type streamLayer struct {
	link  *ClusterLink
	proto string
}

func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.link.queues[s.proto]:
		return c, nil
	case <-s.link.closed:
		return nil, ErrLinkClosed
	}
}

func (s *streamLayer) Close() error   { return s.link.Close() }
func (s *streamLayer) Addr() net.Addr { return s.link.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.link.Dial(s.proto, string(address), timeout)
}
