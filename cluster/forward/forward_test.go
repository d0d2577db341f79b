package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// wait is how long a test waits for something that should happen
// promptly before calling it a failure. It is a hang detector, not a
// timing assertion.
const wait = 20 * time.Second

// checkGoroutines fails the test if goroutines started during it are
// still running once its cleanups (registered later, so run earlier)
// have closed everything.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(wait)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines, %d at start:\n%s", n, base, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// recv waits for a value from ch, failing the test after wait.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

type testServer struct {
	addr     string
	ln       net.Listener
	srv      *Server
	served   chan error
	accepted atomic.Int64
	conns    sync.Map // net.Conn → struct{}: every accepted connection
}

// startServer serves h on a fresh 127.0.0.1 port (or on addr if given).
func startServer(t testing.TB, addr string, h Handler, cfg ServerConfig) *testServer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), ln: ln, srv: NewServer(h, cfg), served: make(chan error, 1)}
	accept := func() (net.Conn, error) {
		c, err := ln.Accept()
		if err == nil {
			ts.accepted.Add(1)
			ts.conns.Store(c, struct{}{})
		}
		return c, err
	}
	go func() { ts.served <- ts.srv.Serve(accept) }()
	t.Cleanup(ts.stop)
	return ts
}

// stop closes the listener and the server and waits for Serve to return.
// Safe to call twice.
func (ts *testServer) stop() {
	ts.ln.Close()
	ts.srv.Close()
	if ts.served != nil {
		<-ts.served
		ts.served = nil
	}
}

func tcpDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

type countingDialer struct{ n atomic.Int64 }

func (d *countingDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	d.n.Add(1)
	return tcpDial(ctx, addr)
}

func newClient(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	c := NewClient(tcpDial, cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

func echo(_ context.Context, req []byte) ([]byte, error) { return req, nil }

func TestEcho(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, "", echo, ServerConfig{})
	c := newClient(t, ClientConfig{})
	for _, msg := range []string{"hello", "", strings.Repeat("x", 300000)} {
		got, err := c.Call(context.Background(), ts.addr, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echo of %d bytes returned %d bytes", len(msg), len(got))
		}
	}
	if n := ts.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 shared", n)
	}
}

func TestConcurrentOutOfOrder(t *testing.T) {
	checkGoroutines(t)
	// The handler answers after a random delay, so answers overtake
	// each other; each answer is derived from its own request.
	h := func(ctx context.Context, req []byte) ([]byte, error) {
		if d := rand.IntN(500); d > 0 {
			time.Sleep(time.Duration(d) * time.Microsecond)
		}
		resp := make([]byte, 0, len(req)+4)
		resp = append(resp, "ack:"...)
		return append(resp, req...), nil
	}
	ts := startServer(t, "", h, ServerConfig{})
	c := newClient(t, ClientConfig{})
	const goroutines, calls = 64, 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				req := fmt.Appendf(nil, "g%d-i%d-", g, i)
				req = append(req, bytes.Repeat([]byte{byte(g)}, rand.IntN(2000))...)
				resp, err := c.Call(context.Background(), ts.addr, req)
				if err != nil {
					errs <- fmt.Errorf("g%d i%d: %w", g, i, err)
					return
				}
				if !bytes.Equal(resp, append([]byte("ack:"), req...)) {
					errs <- fmt.Errorf("g%d i%d: answer for another request: %.40q", g, i, resp)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := ts.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 shared", n)
	}
}

// The first request's answer is held back until the second request has
// been answered: the answers cross on one connection.
func TestAnswersOutOfOrder(t *testing.T) {
	checkGoroutines(t)
	secondDone := make(chan struct{})
	firstStarted := make(chan struct{})
	h := func(ctx context.Context, req []byte) ([]byte, error) {
		if string(req) == "first" {
			close(firstStarted)
			select {
			case <-secondDone:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return req, nil
	}
	ts := startServer(t, "", h, ServerConfig{})
	c := newClient(t, ClientConfig{})
	first := make(chan error, 1)
	go func() {
		resp, err := c.Call(context.Background(), ts.addr, []byte("first"))
		if err == nil && string(resp) != "first" {
			err = fmt.Errorf("answer %q", resp)
		}
		first <- err
	}()
	recv(t, firstStarted, "first request to start")
	resp, err := c.Call(context.Background(), ts.addr, []byte("second"))
	if err != nil || string(resp) != "second" {
		t.Fatalf("second: %q, %v", resp, err)
	}
	close(secondDone)
	if err := recv(t, first, "first answer"); err != nil {
		t.Fatal(err)
	}
	if n := ts.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

func TestRemoteError(t *testing.T) {
	checkGoroutines(t)
	h := func(ctx context.Context, req []byte) ([]byte, error) {
		if string(req) == "long" {
			return nil, errors.New(strings.Repeat("e", 5000))
		}
		return nil, errors.New("not the leader")
	}
	ts := startServer(t, "", h, ServerConfig{})
	c := newClient(t, ClientConfig{})
	_, err := c.Call(context.Background(), ts.addr, []byte("x"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "not the leader" {
		t.Fatalf("got %v, want RemoteError \"not the leader\"", err)
	}
	if !errors.Is(err, ErrRemote) || errors.Is(err, ErrConnLost) {
		t.Fatalf("%v: wrong sentinels", err)
	}
	_, err = c.Call(context.Background(), ts.addr, []byte("long"))
	if !errors.As(err, &re) || re.Msg != strings.Repeat("e", maxErrorText) {
		t.Fatalf("long error: got %v", err)
	}
	// The connection survives handler errors.
	if n := ts.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// hangingHandler blocks every request until its ctx ends, reporting
// starts and cancellations.
type hangingHandler struct {
	started   chan string
	cancelled chan string
}

func newHanging() *hangingHandler {
	return &hangingHandler{started: make(chan string, 100), cancelled: make(chan string, 100)}
}

func (h *hangingHandler) handle(ctx context.Context, req []byte) ([]byte, error) {
	h.started <- string(req)
	<-ctx.Done()
	h.cancelled <- string(req)
	return nil, ctx.Err()
}

func TestServerKilledMidCall(t *testing.T) {
	checkGoroutines(t)
	hh := newHanging()
	ts := startServer(t, "", hh.handle, ServerConfig{})
	d := &countingDialer{}
	c := NewClient(d.dial, ClientConfig{})
	t.Cleanup(func() { c.Close() })

	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), ts.addr, []byte("apply"))
		done <- err
	}()
	recv(t, hh.started, "handler to start")
	ts.stop() // listener and connections closed; the handler's ctx ends
	err := recv(t, done, "Call to fail")
	if !errors.Is(err, ErrConnLost) {
		t.Fatalf("got %v, want ErrConnLost", err)
	}
	recv(t, hh.cancelled, "handler ctx cancelled")

	// Nothing listens now: the next call cannot dial.
	if _, err := c.Call(context.Background(), ts.addr, []byte("x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no server: got %v, want ErrUnavailable", err)
	}

	// A new server on the same address; the next call redials.
	ts2 := startServer(t, ts.addr, echo, ServerConfig{})
	resp, err := c.Call(context.Background(), ts2.addr, []byte("again"))
	if err != nil || string(resp) != "again" {
		t.Fatalf("after restart: %q, %v", resp, err)
	}
	if n := d.n.Load(); n != 3 {
		t.Fatalf("%d dials, want 3", n)
	}
}

func TestCancelWhileHandlerHangs(t *testing.T) {
	checkGoroutines(t)
	hh := newHanging()
	ts := startServer(t, "", hh.handle, ServerConfig{})
	c := newClient(t, ClientConfig{})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, ts.addr, []byte("slow"))
		done <- err
	}()
	recv(t, hh.started, "handler to start")
	cancel()
	if err := recv(t, done, "Call to return after cancel"); err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled as-is", err)
	}
	// The cancel frame ends the handler's ctx; its answer is dropped.
	recv(t, hh.cancelled, "handler ctx cancelled")

	// Deadline: the same, with DeadlineExceeded.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, ts.addr, []byte("slow")); err != context.DeadlineExceeded {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}

	// A ctx already done sends nothing.
	if _, err := c.Call(ctx, ts.addr, []byte("x")); err != context.DeadlineExceeded {
		t.Fatalf("done ctx: got %v", err)
	}
	if n := ts.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// A handler that ignores its ctx answers after the caller left: the
// answer is dropped and the connection stays usable.
func TestLateAnswerDropped(t *testing.T) {
	checkGoroutines(t)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	answered := make(chan struct{}, 1)
	h := func(ctx context.Context, req []byte) ([]byte, error) {
		if string(req) == "late" {
			started <- struct{}{}
			<-release
			defer func() { answered <- struct{}{} }()
			return []byte("too late"), nil
		}
		return req, nil
	}
	ts := startServer(t, "", h, ServerConfig{})
	c := newClient(t, ClientConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, ts.addr, []byte("late"))
		done <- err
	}()
	recv(t, started, "handler to start")
	cancel()
	if err := recv(t, done, "Call to return"); err != context.Canceled {
		t.Fatalf("got %v", err)
	}
	close(release)
	recv(t, answered, "late answer")
	// The late answer has been sent; a call after it must go through on
	// the same connection (the late answer did not kill it).
	for i := range 20 {
		msg := fmt.Sprint("after ", i)
		resp, err := c.Call(context.Background(), ts.addr, []byte(msg))
		if err != nil || string(resp) != msg {
			t.Fatalf("after late answer: %q, %v", resp, err)
		}
	}
	if n := ts.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

func TestClientCloseDuringCall(t *testing.T) {
	checkGoroutines(t)
	hh := newHanging()
	ts := startServer(t, "", hh.handle, ServerConfig{})
	c := NewClient(tcpDial, ClientConfig{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), ts.addr, []byte("pending"))
		done <- err
	}()
	recv(t, hh.started, "handler to start")
	c.Close()
	err := recv(t, done, "Call to fail")
	if !errors.Is(err, ErrConnLost) || !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrConnLost and ErrClosed", err)
	}
	// The connection closed, so the server cancelled the handler.
	recv(t, hh.cancelled, "handler ctx cancelled by connection close")
	if _, err := c.Call(context.Background(), ts.addr, nil); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

// A raw client sends a request and hangs up: the handler's ctx ends.
func TestConnCloseCancelsHandler(t *testing.T) {
	checkGoroutines(t)
	hh := newHanging()
	ts := startServer(t, "", hh.handle, ServerConfig{})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(appendFrame(nil, typeRequest, 1, []byte("raw"))); err != nil {
		t.Fatal(err)
	}
	recv(t, hh.started, "handler to start")
	conn.Close()
	recv(t, hh.cancelled, "handler ctx cancelled by connection close")
}

func TestServerCloseWaitsForHandlers(t *testing.T) {
	checkGoroutines(t)
	hh := newHanging()
	ts := startServer(t, "", hh.handle, ServerConfig{})
	c := newClient(t, ClientConfig{})
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			_, err := c.Call(context.Background(), ts.addr, fmt.Append(nil, i))
			errs <- err
		}()
	}
	for range 3 {
		recv(t, hh.started, "handlers to start")
	}
	ts.srv.Close()
	ts.ln.Close()
	// Close returned, so every handler has returned.
	if n := len(hh.cancelled); n != 3 {
		t.Fatalf("Close returned with %d of 3 handlers finished", n)
	}
	for range 3 {
		if err := recv(t, errs, "calls to fail"); !errors.Is(err, ErrConnLost) {
			t.Fatalf("got %v, want ErrConnLost", err)
		}
	}
	if err := recv(t, ts.served, "Serve to return"); err != ErrClosed {
		// Serve sees the closed listener only after Close: ErrClosed.
		t.Fatalf("Serve returned %v, want ErrClosed", err)
	}
	ts.served = nil
}

func TestFrameTooLarge(t *testing.T) {
	t.Run("client refuses request", func(t *testing.T) {
		checkGoroutines(t)
		ts := startServer(t, "", echo, ServerConfig{})
		d := &countingDialer{}
		c := NewClient(d.dial, ClientConfig{MaxFrame: 100})
		defer c.Close()
		if _, err := c.Call(context.Background(), ts.addr, make([]byte, 101)); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("got %v, want ErrFrameTooLarge", err)
		}
		if d.n.Load() != 0 {
			t.Fatal("dialled for a request it refused")
		}
		if _, err := c.Call(context.Background(), ts.addr, make([]byte, 100)); err != nil {
			t.Fatalf("at the limit: %v", err)
		}
	})
	t.Run("server refuses request", func(t *testing.T) {
		checkGoroutines(t)
		ts := startServer(t, "", echo, ServerConfig{MaxFrame: 100})
		c := newClient(t, ClientConfig{})
		if _, err := c.Call(context.Background(), ts.addr, make([]byte, 101)); !errors.Is(err, ErrConnLost) {
			t.Fatalf("got %v, want ErrConnLost", err)
		}
		// The server still serves; the client redials.
		if _, err := c.Call(context.Background(), ts.addr, make([]byte, 100)); err != nil {
			t.Fatalf("after refusal: %v", err)
		}
		if n := ts.accepted.Load(); n != 2 {
			t.Fatalf("%d connections, want 2", n)
		}
	})
	t.Run("server refuses to send response", func(t *testing.T) {
		checkGoroutines(t)
		h := func(context.Context, []byte) ([]byte, error) { return make([]byte, 2000), nil }
		ts := startServer(t, "", h, ServerConfig{MaxFrame: 1000})
		c := newClient(t, ClientConfig{})
		_, err := c.Call(context.Background(), ts.addr, nil)
		var re *RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Msg, "frame too large") {
			t.Fatalf("got %v, want RemoteError about the frame size", err)
		}
	})
	t.Run("client refuses response", func(t *testing.T) {
		checkGoroutines(t)
		h := func(context.Context, []byte) ([]byte, error) { return make([]byte, 2000), nil }
		ts := startServer(t, "", h, ServerConfig{})
		c := newClient(t, ClientConfig{MaxFrame: 1000})
		if _, err := c.Call(context.Background(), ts.addr, nil); !errors.Is(err, ErrConnLost) {
			t.Fatalf("got %v, want ErrConnLost", err)
		}
	})
}

// Each input breaks the protocol; the server must close that connection
// and go on serving others.
func TestGarbageFromRawClient(t *testing.T) {
	checkGoroutines(t)
	var answered atomic.Int64
	h := func(_ context.Context, req []byte) ([]byte, error) {
		answered.Add(1)
		return req, nil
	}
	ts := startServer(t, "", h, ServerConfig{MaxFrame: 1 << 10})
	c := newClient(t, ClientConfig{})
	req := func(id uint64, p string) []byte { return appendFrame(nil, typeRequest, id, []byte(p)) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"random", func() []byte {
			b := make([]byte, 4096)
			for i := range b {
				b[i] = byte(rand.IntN(256))
			}
			b[0] = 0xee // not a valid kind byte
			return b
		}()},
		{"version 2", header(0x21, 1, 0)},
		{"unknown type", header(0x17, 1, 0)},
		{"id 0", header(0x11, 0, 0)},
		{"oversized", header(0x11, 1, 1<<30)},
		{"response from client", appendFrame(nil, typeResponse, 1, []byte("x"))},
		{"error from client", appendFrame(nil, typeError, 1, []byte("x"))},
		{"cancel with payload", append(header(0x14, 1, 1), 'x')},
		{"cancel for unsent id", cat(req(1, "a"), appendFrame(nil, typeCancel, 9, nil))},
		{"repeated id", cat(req(1, "a"), req(1, "b"))},
		{"decreasing id", cat(req(5, "a"), req(4, "b"))},
		{"valid then garbage", cat(req(1, "a"), header(0x11, 0, 0))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tc.data); err != nil {
				t.Fatal(err)
			}
			// Read until the server hangs up; any answers to valid
			// requests before the bad frame may arrive first.
			conn.SetReadDeadline(time.Now().Add(wait))
			_, err = io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("server kept the connection open")
			}
			// Others are still served.
			msg := "still here " + tc.name
			resp, err := c.Call(context.Background(), ts.addr, []byte(msg))
			if err != nil || string(resp) != msg {
				t.Fatalf("good client after garbage: %q, %v", resp, err)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		conn, err := net.DialTCP("tcp", nil, mustResolve(t, ts.addr))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write(req(1, "abcdef")[:15]) // header and 2 of 6 bytes
		conn.CloseWrite()
		conn.SetReadDeadline(time.Now().Add(wait))
		if _, err := io.Copy(io.Discard, conn); err != nil {
			t.Fatalf("server did not hang up: %v", err)
		}
	})
}

func mustResolve(t *testing.T, addr string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fakeServer runs script on every connection it accepts; quit is closed
// when the test ends.
func fakeServer(t *testing.T, script func(conn net.Conn, quit <-chan struct{})) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	quit := make(chan struct{})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { script(c, quit) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		close(quit)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// A server that breaks the protocol costs the client that connection:
// pending calls fail with ErrConnLost.
func TestBadServer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(id uint64) []byte
	}{
		{"unknown id", func(uint64) []byte { return appendFrame(nil, typeResponse, 1000, nil) }},
		{"request from server", func(id uint64) []byte { return appendFrame(nil, typeRequest, id, nil) }},
		{"cancel from server", func(id uint64) []byte { return appendFrame(nil, typeCancel, id, nil) }},
		{"answered twice", func(id uint64) []byte {
			return append(appendFrame(nil, typeResponse, id, nil), appendFrame(nil, typeResponse, id, nil)...)
		}},
		{"oversized", func(id uint64) []byte { return header(0x12, id, 1<<20) }},
		{"garbage", func(uint64) []byte { return []byte("HTTP/1.1 400 Bad Request\r\n\r\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			addr := fakeServer(t, func(conn net.Conn, _ <-chan struct{}) {
				defer conn.Close()
				var ids []uint64
				for len(ids) < 2 { // wait for both calls
					f, err := readFrame(conn, 1<<20)
					if err != nil {
						return
					}
					if f.typ == typeRequest {
						ids = append(ids, f.id)
					}
				}
				conn.Write(tc.reply(ids[0]))
				io.Copy(io.Discard, conn) // until the client hangs up
			})
			c := newClient(t, ClientConfig{MaxFrame: 1 << 10})
			errs := make(chan error, 2)
			for range 2 {
				go func() {
					_, err := c.Call(context.Background(), addr, []byte("req"))
					errs <- err
				}()
			}
			for range 2 {
				err := recv(t, errs, "calls to fail")
				if tc.name == "answered twice" && err == nil {
					continue // the first answer is legitimate
				}
				if !errors.Is(err, ErrConnLost) {
					t.Fatalf("got %v, want ErrConnLost", err)
				}
			}
		})
	}
}

// A peer that accepts and never reads must not hold up calls to other
// addresses, and calls to it must end with their ctx.
func TestStuckPeer(t *testing.T) {
	checkGoroutines(t)
	stuck := fakeServer(t, func(conn net.Conn, quit <-chan struct{}) {
		<-quit // never read
		conn.Close()
	})
	good := startServer(t, "", echo, ServerConfig{})
	c := newClient(t, ClientConfig{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const stuckCalls = 8
	stuckErrs := make(chan error, stuckCalls)
	for range stuckCalls {
		go func() {
			_, err := c.Call(ctx, stuck, make([]byte, 4<<20)) // 32 MiB in all: fills the socket buffers
			stuckErrs <- err
		}()
	}
	for i := range 200 {
		msg := fmt.Sprint("call ", i)
		resp, err := c.Call(context.Background(), good.addr, []byte(msg))
		if err != nil || string(resp) != msg {
			t.Fatalf("good peer: %q, %v", resp, err)
		}
	}
	cancel()
	for range stuckCalls {
		if err := recv(t, stuckErrs, "stuck calls to end with their ctx"); err != context.Canceled {
			t.Fatalf("stuck call: %v", err)
		}
	}
}

func TestDialFailure(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	d := &countingDialer{}
	c := NewClient(d.dial, ClientConfig{})
	defer c.Close()
	for range 2 {
		_, err := c.Call(context.Background(), addr, []byte("x"))
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConnLost) {
			t.Fatalf("got %v, want ErrUnavailable", err)
		}
	}
	if n := d.n.Load(); n != 2 {
		t.Fatalf("%d dials, want 2: a failed dial is not cached", n)
	}

	boom := NewClient(func(context.Context, string) (net.Conn, error) { return nil, errors.New("no route") }, ClientConfig{})
	defer boom.Close()
	if _, err := boom.Call(context.Background(), addr, nil); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no route") {
		t.Fatalf("got %v", err)
	}
}

// Concurrent callers to an address share one dial.
func TestConcurrentCallsShareDial(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, "", echo, ServerConfig{})
	release := make(chan struct{})
	var dials atomic.Int64
	c := NewClient(func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		<-release
		return tcpDial(ctx, addr)
	}, ClientConfig{})
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := c.Call(context.Background(), ts.addr, []byte("x"))
			errs <- err
		})
	}
	testwait.Within(t, wait, "the dial to start", func() bool { return dials.Load() == 1 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d dials, want 1", n)
	}
}

// A caller whose ctx ends while the dial is slow returns at once; Close
// aborts the dial.
func TestCtxEndsDuringDial(t *testing.T) {
	checkGoroutines(t)
	c := NewClient(func(ctx context.Context, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}, ClientConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, "127.0.0.1:1", nil)
		done <- err
	}()
	cancel()
	if err := recv(t, done, "Call to return"); err != context.Canceled {
		t.Fatalf("got %v", err)
	}
	c.Close() // cancels the dial; the leak check proves it ended
}

func TestCloseIdempotentAndConcurrent(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, "", echo, ServerConfig{})
	c := NewClient(tcpDial, ClientConfig{})
	if _, err := c.Call(context.Background(), ts.addr, []byte("x")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { c.Close() })
		wg.Go(func() { ts.srv.Close() })
	}
	wg.Wait()
	c.Close()
	ts.srv.Close()
	if _, err := c.Call(context.Background(), ts.addr, []byte("x")); err != ErrClosed {
		t.Fatalf("Call after Close: %v", err)
	}
	ts.ln.Close()
	if err := recv(t, ts.served, "Serve to return"); err != ErrClosed {
		t.Fatalf("Serve after Close: %v", err)
	}
	ts.served = nil
	if err := ts.srv.Serve(func() (net.Conn, error) { return nil, errors.New("accept") }); err != ErrClosed {
		t.Fatalf("Serve on a closed server: %v", err)
	}
}

// Calls racing with connection failures and ctx ends never hang, never
// get someone else's answer, and leave no goroutines behind.
func TestChaos(t *testing.T) {
	checkGoroutines(t)
	h := func(ctx context.Context, req []byte) ([]byte, error) {
		select {
		case <-time.After(time.Duration(rand.IntN(300)) * time.Microsecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return req, nil
	}
	ts := startServer(t, "", h, ServerConfig{MaxInFlightPerConn: 8})
	c := newClient(t, ClientConfig{})
	stop := make(chan struct{})
	var killer sync.WaitGroup
	killer.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			ts.conns.Range(func(k, _ any) bool {
				if rand.IntN(3) == 0 {
					k.(net.Conn).Close()
					ts.conns.Delete(k)
				}
				return true
			})
		}
	})
	var wg sync.WaitGroup
	var ok, lost, unavailable, ctxEnded atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := range 150 {
				ctx, cancel := context.WithCancel(context.Background())
				if rand.IntN(5) == 0 {
					go cancel()
				}
				msg := fmt.Appendf(nil, "%d/%d", g, i)
				resp, err := c.Call(ctx, ts.addr, msg)
				cancel()
				switch {
				case err == nil:
					if !bytes.Equal(resp, msg) {
						t.Errorf("answer %q for %q", resp, msg)
					}
					ok.Add(1)
				case errors.Is(err, ErrConnLost):
					lost.Add(1)
				case errors.Is(err, ErrUnavailable):
					unavailable.Add(1)
				case errors.Is(err, context.Canceled):
					ctxEnded.Add(1)
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	killer.Wait()
	t.Logf("ok %d, conn lost %d, unavailable %d, ctx ended %d, connections %d",
		ok.Load(), lost.Load(), unavailable.Load(), ctxEnded.Load(), ts.accepted.Load())
	if ok.Load() == 0 {
		t.Fatal("no call succeeded")
	}
}
