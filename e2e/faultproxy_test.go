package e2e

import (
	"io"
	"net"
	"sync"
	"testing"
)

// faultProxy stands in front of one node's cluster port (its advertised
// cluster_addr) and can cut nodes off: connections from or to an isolated
// node are closed and new ones refused. Nodes bind their cluster port on
// their own loopback IP (127.0.0.x) and dial from it, so the proxy tells
// who is calling by the source address.
type faultProxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	owner  string // IP of the node behind this proxy
	net    *faultNet

	mu    sync.Mutex
	conns map[net.Conn]string // client side → the caller's IP
}

// faultNet is the set of proxies of one cluster and who is isolated.
type faultNet struct {
	mu       sync.Mutex
	isolated map[string]bool
	proxies  []*faultProxy
}

func newFaultNet() *faultNet { return &faultNet{isolated: map[string]bool{}} }

func (fn *faultNet) proxy(t *testing.T, ownerIP, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, target: target, owner: ownerIP, net: fn, conns: map[net.Conn]string{}}
	fn.mu.Lock()
	fn.proxies = append(fn.proxies, p)
	fn.mu.Unlock()
	go p.serve()
	t.Cleanup(func() { p.close() })
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (fn *faultNet) blocked(a, b string) bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.isolated[a] || fn.isolated[b]
}

// isolate cuts the node with ip off from every other node, both ways.
func (fn *faultNet) isolate(ip string) {
	fn.mu.Lock()
	fn.isolated[ip] = true
	proxies := append([]*faultProxy(nil), fn.proxies...)
	fn.mu.Unlock()
	for _, p := range proxies {
		p.dropBlocked()
	}
}

// heal lets every node talk again.
func (fn *faultNet) heal() {
	fn.mu.Lock()
	fn.isolated = map[string]bool{}
	fn.mu.Unlock()
}

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		from, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		if p.net.blocked(from, p.owner) {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c] = from
		p.conns[up] = from
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *faultProxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *faultProxy) dropBlocked() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, from := range p.conns {
		if p.net.blocked(from, p.owner) {
			c.Close()
		}
	}
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// The proxy passes traffic, refuses and cuts an isolated caller, and lets
// it back after heal.
func TestFaultProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	fn := newFaultNet()
	p := fn.proxy(t, "127.0.0.50", echo.Addr().String())
	dialFrom := func(ip string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return d.Dial("tcp", p.addr())
	}
	roundTrip := func(c net.Conn) bool {
		if _, err := c.Write([]byte("x")); err != nil {
			return false
		}
		b := make([]byte, 1)
		_, err := io.ReadFull(c, b)
		return err == nil
	}
	c, err := dialFrom("127.0.0.51")
	if err != nil || !roundTrip(c) {
		t.Fatalf("traffic did not pass: %v", err)
	}
	fn.isolate("127.0.0.51")
	if roundTrip(c) {
		t.Fatal("an isolated node's open connection still works")
	}
	if c2, err := dialFrom("127.0.0.51"); err == nil && roundTrip(c2) {
		t.Fatal("an isolated node opened a new connection")
	}
	if c3, err := dialFrom("127.0.0.52"); err != nil || !roundTrip(c3) {
		t.Fatal("isolating one node cut another")
	}
	fn.heal()
	if c4, err := dialFrom("127.0.0.51"); err != nil || !roundTrip(c4) {
		t.Fatal("no traffic after heal")
	}
}
