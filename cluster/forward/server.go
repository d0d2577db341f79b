package forward

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
)

// Handler runs one forwarded request on the receiving node and returns
// the answer. The error's text is sent back to the caller, so it must
// never carry key material: return sentinel-style messages only.
//
// ctx is cancelled when the caller gives up (its cancel frame arrives),
// when the connection dies, and when the Server is closed. Handlers run
// concurrently and must not keep req after returning. A handler panic is
// not recovered.
type Handler func(ctx context.Context, req []byte) (resp []byte, err error)

// ServerConfig tunes a Server. The zero value is usable.
type ServerConfig struct {
	// MaxInFlightPerConn bounds the handlers running for one connection
	// (default 256). At the bound the server stops reading that
	// connection (cancel frames included) until a handler returns, which
	// pushes back on the client through TCP.
	MaxInFlightPerConn int
	// MaxFrame is the largest request payload accepted (default
	// DefaultMaxFrame, 64 MiB); a larger request is a protocol violation
	// that closes the connection. A response over the limit is not sent:
	// the caller gets a RemoteError saying so.
	MaxFrame int
	// Logger receives protocol violations (Warn) and connection ends
	// (Debug). Default: discard.
	Logger hclog.Logger
}

// maxErrorText caps the error text sent for a failed request.
const maxErrorText = 1024

// Server answers forwarded requests with a Handler.
type Server struct {
	h           Handler
	maxInFlight int
	maxFrame    int
	log         hclog.Logger

	ctx    context.Context // parent of every request ctx; cancelled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[*serverConn]struct{}

	wg        sync.WaitGroup // connection and handler goroutines
	closeOnce sync.Once
}

// NewServer returns a Server that answers requests with h.
func NewServer(h Handler, cfg ServerConfig) *Server {
	if h == nil {
		panic("forward: nil Handler")
	}
	s := &Server{
		h:           h,
		maxInFlight: cfg.MaxInFlightPerConn,
		maxFrame:    limitFrame(cfg.MaxFrame),
		log:         cfg.Logger,
		conns:       make(map[*serverConn]struct{}),
	}
	if s.maxInFlight <= 0 {
		s.maxInFlight = 256
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Serve serves every connection accept returns, each on its own
// goroutines, until accept returns an error; Serve then returns that
// error, or ErrClosed if the Server has been closed. Connections already
// accepted keep being served until they end or Close is called. Serve
// may run more than once, even concurrently, on different accept funcs.
//
// Close does not interrupt accept: close the listener behind it too.
func (s *Server) Serve(accept func() (net.Conn, error)) error {
	for {
		c, err := accept()
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			if c != nil {
				c.Close()
			}
			return ErrClosed
		}
		if err != nil {
			if c != nil {
				c.Close()
			}
			return err
		}
		if c == nil {
			return errors.New("forward: accept returned no connection and no error")
		}
		s.serveConn(c)
	}
}

// Close stops the Server: it cancels every running request's ctx, closes
// every live connection, and waits until all handlers have returned (a
// handler that ignores its ctx delays Close until it returns). Close is
// idempotent and safe to call concurrently; later Serve calls return
// ErrClosed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*serverConn, 0, len(s.conns))
		for sc := range s.conns {
			conns = append(conns, sc)
		}
		s.mu.Unlock()
		for _, sc := range conns {
			sc.fail(ErrClosed)
		}
		s.cancel()
	})
	s.wg.Wait()
	return nil
}

// serverConn is one accepted connection: a reader goroutine that starts
// a goroutine per request, and a writer goroutine for the answers.
type serverConn struct {
	s      *Server
	c      net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	out    chan outFrame
	done   chan struct{} // closed when the connection is finished
	slots  chan struct{} // one token per running handler
	once   sync.Once

	lastID uint64 // highest request id read; reader goroutine only

	mu      sync.Mutex
	running map[uint64]context.CancelFunc
}

func (s *Server) serveConn(c net.Conn) {
	sc := &serverConn{
		s:       s,
		c:       c,
		out:     make(chan outFrame, 128),
		done:    make(chan struct{}),
		slots:   make(chan struct{}, s.maxInFlight),
		running: make(map[uint64]context.CancelFunc),
	}
	sc.ctx, sc.cancel = context.WithCancel(s.ctx)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sc.cancel()
		c.Close()
		return
	}
	s.conns[sc] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()
	go sc.readLoop()
	go sc.writeLoop()
}

// fail ends the connection once: request ctxs are cancelled, the socket
// closed. Running handlers finish on their own; their answers are dropped.
func (sc *serverConn) fail(cause error) {
	sc.once.Do(func() {
		switch {
		case errors.Is(cause, errProtocol):
			sc.s.log.Warn("closing forwarding connection", "remote", sc.c.RemoteAddr(), "error", cause)
		case errors.Is(cause, io.EOF), errors.Is(cause, ErrClosed):
			sc.s.log.Debug("forwarding connection ended", "remote", sc.c.RemoteAddr(), "reason", cause)
		default:
			sc.s.log.Debug("forwarding connection failed", "remote", sc.c.RemoteAddr(), "error", cause)
		}
		// Closed before the handlers' ctxs end, so the answers of
		// handlers that return because of it never reach the wire.
		close(sc.done)
		sc.c.Close()
		sc.cancel()
		sc.s.mu.Lock()
		delete(sc.s.conns, sc)
		sc.s.mu.Unlock()
	})
}

func (sc *serverConn) readLoop() {
	defer sc.s.wg.Done()
	r := bufio.NewReaderSize(sc.c, 64<<10)
	for {
		f, err := readFrame(r, sc.s.maxFrame)
		if err != nil {
			sc.fail(err)
			return
		}
		switch f.typ {
		case typeRequest:
			if f.id <= sc.lastID {
				sc.fail(violation("request id %d after id %d", f.id, sc.lastID))
				return
			}
			sc.lastID = f.id
			select {
			case sc.slots <- struct{}{}:
			case <-sc.done:
				return
			}
			ctx, cancel := context.WithCancel(sc.ctx)
			sc.mu.Lock()
			sc.running[f.id] = cancel
			sc.mu.Unlock()
			sc.s.wg.Add(1)
			go sc.handle(ctx, cancel, f)
		case typeCancel:
			if f.id > sc.lastID {
				sc.fail(violation("cancel for id %d, never requested", f.id))
				return
			}
			sc.mu.Lock()
			if cancel := sc.running[f.id]; cancel != nil {
				cancel()
			}
			sc.mu.Unlock()
		default:
			sc.fail(violation("%s frame from a client", typeName(f.typ)))
			return
		}
	}
}

func (sc *serverConn) handle(ctx context.Context, cancel context.CancelFunc, f frame) {
	defer sc.s.wg.Done()
	defer func() {
		sc.mu.Lock()
		delete(sc.running, f.id)
		sc.mu.Unlock()
		cancel()
		<-sc.slots
	}()
	resp, err := sc.s.h(ctx, f.payload)
	out := outFrame{typ: typeResponse, id: f.id, payload: resp}
	switch {
	case err != nil:
		out = outFrame{typ: typeError, id: f.id, payload: []byte(errorText(err.Error(), sc.s.maxFrame))}
	case len(resp) > sc.s.maxFrame:
		sc.s.log.Warn("forwarded response over the frame limit, not sent", "remote", sc.c.RemoteAddr(),
			"bytes", len(resp), "limit", sc.s.maxFrame)
		msg := fmt.Sprintf("%v: response of %d bytes, limit %d", ErrFrameTooLarge, len(resp), sc.s.maxFrame)
		out = outFrame{typ: typeError, id: f.id, payload: []byte(errorText(msg, sc.s.maxFrame))}
	}
	select {
	case sc.out <- out:
	case <-sc.done:
	}
}

func (sc *serverConn) writeLoop() {
	defer sc.s.wg.Done()
	if err := writeLoop(bufio.NewWriterSize(sc.c, 64<<10), sc.out, sc.done, nil); err != nil {
		sc.fail(err)
	}
}

// errorText cuts msg to at most min(maxErrorText, limit) bytes without
// splitting a UTF-8 sequence.
func errorText(msg string, limit int) string {
	n := min(maxErrorText, limit)
	if len(msg) <= n {
		return msg
	}
	msg = msg[:n]
	for i := len(msg) - 1; i >= 0 && i >= len(msg)-utf8.UTFMax; i-- {
		if utf8.RuneStart(msg[i]) {
			if !utf8.FullRuneInString(msg[i:]) {
				msg = msg[:i]
			}
			break
		}
	}
	return msg
}
