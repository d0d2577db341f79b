package forward

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ClientConfig tunes a Client. The zero value is usable.
type ClientConfig struct {
	// MaxFrame is the largest request Call sends and the largest response
	// it accepts (default DefaultMaxFrame, 64 MiB). Use the same value as
	// the servers: a request over the server's limit costs the
	// connection.
	MaxFrame int
	// DialTimeout bounds one dial (default 10s). A dial is shared by the
	// calls waiting for it and is not tied to any one caller's ctx.
	DialTimeout time.Duration
	// Logger receives protocol violations (Warn) and connection ends
	// (Debug). Default: discard.
	Logger hclog.Logger
}

// Client sends requests to Servers, one connection per address shared by
// all concurrent calls to it. It is safe for concurrent use.
type Client struct {
	dial        func(ctx context.Context, addr string) (net.Conn, error)
	maxFrame    int
	dialTimeout time.Duration
	log         hclog.Logger

	ctx    context.Context // parent of every dial; cancelled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	slots  map[string]*slot

	wg        sync.WaitGroup // dial and connection goroutines
	closeOnce sync.Once
}

// slot is an address's connection: being dialled until ready is closed,
// then either cc or err is set. Both are written under Client.mu before
// ready is closed.
type slot struct {
	ready chan struct{}
	cc    *clientConn
	err   error
}

// NewClient returns a Client that reaches addresses with dial (for
// keyraft: the cluster link's mutual-TLS dialer for the forwarding
// protocol). dial must honour its ctx.
func NewClient(dial func(ctx context.Context, addr string) (net.Conn, error), cfg ClientConfig) *Client {
	if dial == nil {
		panic("forward: nil dial func")
	}
	c := &Client{
		dial:        dial,
		maxFrame:    limitFrame(cfg.MaxFrame),
		dialTimeout: cfg.DialTimeout,
		log:         cfg.Logger,
		slots:       make(map[string]*slot),
	}
	if c.dialTimeout <= 0 {
		c.dialTimeout = 10 * time.Second
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Call sends req to the Server at addr and waits for its answer or for
// ctx to end. It dials addr if there is no live connection; the
// connection is then shared by concurrent calls and redialled after it
// fails. Call does not keep req after it returns, and the returned slice
// belongs to the caller.
//
// Errors:
//   - *RemoteError (errors.Is ErrRemote): the handler returned an error;
//     Msg is its text.
//   - ErrConnLost: the connection died after req was written. The outcome
//     is unknown; treat it like a Raft apply timeout.
//   - ErrUnavailable: nothing was sent (dial failed, or the connection
//     broke before req was written). Safe to retry.
//   - ctx.Err(), as-is, when ctx ends first. If req had been written the
//     outcome is unknown, as for ErrConnLost.
//   - ErrFrameTooLarge: req is over MaxFrame; nothing was sent.
//   - ErrClosed: the Client is closed. A call that was in flight when
//     Close ran gets an error matching both ErrConnLost and ErrClosed.
func (c *Client) Call(ctx context.Context, addr string, req []byte) ([]byte, error) {
	if len(req) > c.maxFrame {
		return nil, fmt.Errorf("%w: request of %d bytes, limit %d", ErrFrameTooLarge, len(req), c.maxFrame)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req = bytes.Clone(req) // the writer may still hold it after Call returns
	for attempt := 1; ; attempt++ {
		cc, err := c.conn(ctx, addr)
		if err != nil {
			return nil, err
		}
		select {
		case <-cc.done:
			// cc died before we could use it; it is out of the table by
			// now, so the next lookup dials afresh.
			if attempt < 3 {
				continue
			}
		default:
		}
		return cc.roundTrip(ctx, req)
	}
}

// Close closes every connection, failing the calls in flight, and waits
// for the Client's goroutines to exit. It is idempotent and safe to call
// concurrently; later Calls return ErrClosed.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		var live []*clientConn
		for _, s := range c.slots {
			select {
			case <-s.ready:
				if s.cc != nil {
					live = append(live, s.cc)
				}
			default: // the dial goroutine sees closed and gives up
			}
		}
		c.mu.Unlock()
		c.cancel()
		for _, cc := range live {
			cc.fail(ErrClosed)
		}
	})
	c.wg.Wait()
	return nil
}

// conn returns addr's connection, dialling if there is none.
func (c *Client) conn(ctx context.Context, addr string) (*clientConn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	s := c.slots[addr]
	if s == nil {
		s = &slot{ready: make(chan struct{})}
		c.slots[addr] = s
		c.wg.Add(1)
		go c.dialSlot(addr, s)
	}
	c.mu.Unlock()
	select {
	case <-s.ready:
		if s.err != nil {
			return nil, s.err
		}
		return s.cc, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Client) dialSlot(addr string, s *slot) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.dialTimeout)
	conn, err := c.dial(ctx, addr)
	cancel()
	if err == nil && conn == nil {
		err = errors.New("dial returned no connection and no error")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(s.ready)
	if c.closed {
		if conn != nil {
			conn.Close()
		}
		s.err = ErrClosed
		return
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		c.log.Debug("forwarding dial failed", "addr", addr, "error", err)
		delete(c.slots, addr) // s is still the slot: only dialSlot and fail remove it
		s.err = fmt.Errorf("%w: dial %s: %v", ErrUnavailable, addr, err)
		return
	}
	cc := &clientConn{
		cl:        c,
		addr:      addr,
		slot:      s,
		c:         conn,
		out:       make(chan outFrame, 128),
		done:      make(chan struct{}),
		pending:   make(map[uint64]*call),
		abandoned: make(map[uint64]struct{}),
	}
	s.cc = cc
	c.wg.Add(2)
	go cc.readLoop()
	go cc.writeLoop()
}

// Call states. Only the writer moves a call from queued to sent, when it
// writes it; a caller that gives up, or finds the connection dead, moves
// it from queued to abandoned or failed, which keeps it from being
// written. So a call that never reached sent was never sent.
const (
	stateQueued uint32 = iota
	stateSent
	stateAbandoned
	stateFailed
)

// call is one request in flight.
type call struct {
	id    uint64 // set with stateSent, under clientConn.mu
	state atomic.Uint32
	done  chan result // buffered; receives at most one result
}

type result struct {
	resp []byte
	err  error
}

// clientConn is one connection: a writer goroutine draining out and a
// reader goroutine matching answers to pending calls.
type clientConn struct {
	cl   *Client
	addr string
	slot *slot
	c    net.Conn
	out  chan outFrame
	done chan struct{} // closed when the connection is finished
	once sync.Once

	mu        sync.Mutex
	dead      bool
	lastID    uint64
	pending   map[uint64]*call    // written, not answered
	abandoned map[uint64]struct{} // written, caller gone, answer still due
	unsent    error               // what queued calls get once dead
}

// claim is the writer's step before writing a request: it numbers the
// call in write order (so ids on the wire strictly increase) and records
// it as awaiting an answer. It refuses calls that were abandoned and all
// calls once the connection is dead.
func (cc *clientConn) claim(f *outFrame) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.dead || !f.call.state.CompareAndSwap(stateQueued, stateSent) {
		return false
	}
	cc.lastID++
	f.id, f.call.id = cc.lastID, cc.lastID
	cc.pending[f.id] = f.call
	return true
}

func (cc *clientConn) roundTrip(ctx context.Context, req []byte) ([]byte, error) {
	cl := &call{done: make(chan result, 1)}
	select {
	case cc.out <- outFrame{typ: typeRequest, payload: req, call: cl}:
	case <-cc.done:
		return cc.connDied(cl)
	case <-ctx.Done():
		return nil, ctx.Err() // never queued
	}
	select {
	case r := <-cl.done:
		return r.resp, r.err
	case <-cc.done:
		return cc.connDied(cl)
	case <-ctx.Done():
		return cc.abandon(cl, ctx.Err())
	}
}

// connDied answers a call whose connection is finished: unsent if it was
// never written, else whatever fail delivered.
func (cc *clientConn) connDied(cl *call) ([]byte, error) {
	if cl.state.CompareAndSwap(stateQueued, stateFailed) {
		cc.mu.Lock()
		err := cc.unsent
		cc.mu.Unlock()
		return nil, err
	}
	r := <-cl.done
	return r.resp, r.err
}

// abandon gives up on cl because its caller's ctx ended. If it was
// written, its answer is still due and will be dropped, and the server is
// asked (best effort) to cancel it. If its result is already in, that
// result wins.
func (cc *clientConn) abandon(cl *call, ctxErr error) ([]byte, error) {
	if cl.state.CompareAndSwap(stateQueued, stateAbandoned) {
		return nil, ctxErr // the writer will skip it
	}
	cc.mu.Lock()
	if cc.pending[cl.id] != cl {
		// Answered, or failed by fail: the result is in or on its way.
		cc.mu.Unlock()
		r := <-cl.done
		return r.resp, r.err
	}
	delete(cc.pending, cl.id)
	cc.abandoned[cl.id] = struct{}{}
	cc.mu.Unlock()
	select {
	case cc.out <- outFrame{typ: typeCancel, id: cl.id}:
	default: // queue full: the server answers in its own time
	}
	return nil, ctxErr
}

// fail ends the connection once. Written calls get ErrConnLost; queued
// ones see done and take the unsent error (ErrUnavailable or ErrClosed).
func (cc *clientConn) fail(cause error) {
	cc.once.Do(func() {
		closing := errors.Is(cause, ErrClosed)
		switch {
		case errors.Is(cause, errProtocol):
			cc.cl.log.Warn("closing forwarding connection", "addr", cc.addr, "error", cause)
		case closing:
		default:
			cc.cl.log.Debug("forwarding connection lost", "addr", cc.addr, "error", cause)
		}
		// Out of the table first, so a Call that finds this connection
		// dead and retries dials a new one.
		cc.cl.mu.Lock()
		if cc.cl.slots[cc.addr] == cc.slot {
			delete(cc.cl.slots, cc.addr)
		}
		cc.cl.mu.Unlock()

		if errors.Is(cause, io.EOF) {
			cause = errors.New("closed by peer")
		}
		var lost, unsent error
		if closing {
			lost = fmt.Errorf("%w: %w", ErrConnLost, ErrClosed)
			unsent = ErrClosed
		} else {
			lost = fmt.Errorf("%w: %s: %v", ErrConnLost, cc.addr, cause)
			unsent = fmt.Errorf("%w: %s: connection failed before the request was written: %v", ErrUnavailable, cc.addr, cause)
		}
		cc.mu.Lock()
		cc.dead = true
		cc.unsent = unsent
		pending := cc.pending
		cc.pending, cc.abandoned = nil, nil
		cc.mu.Unlock()
		close(cc.done)
		cc.c.Close()
		for _, cl := range pending {
			cl.done <- result{err: lost}
		}
	})
}

func (cc *clientConn) readLoop() {
	defer cc.cl.wg.Done()
	r := bufio.NewReaderSize(cc.c, 64<<10)
	for {
		f, err := readFrame(r, cc.cl.maxFrame)
		if err != nil {
			cc.fail(err)
			return
		}
		if err := cc.deliver(f); err != nil {
			cc.fail(err)
			return
		}
	}
}

// deliver hands an answer to its call, or drops it if the call was
// abandoned; anything else is a protocol violation.
func (cc *clientConn) deliver(f frame) error {
	if f.typ != typeResponse && f.typ != typeError {
		return violation("%s frame from a server", typeName(f.typ))
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cl := cc.pending[f.id]; cl != nil {
		delete(cc.pending, f.id)
		if f.typ == typeError {
			cl.done <- result{err: &RemoteError{Msg: string(f.payload)}}
		} else {
			cl.done <- result{resp: f.payload}
		}
		return nil
	}
	if _, ok := cc.abandoned[f.id]; ok {
		delete(cc.abandoned, f.id)
		return nil
	}
	return violation("%s for id %d, which is not awaiting an answer", typeName(f.typ), f.id)
}

func (cc *clientConn) writeLoop() {
	defer cc.cl.wg.Done()
	if err := writeLoop(bufio.NewWriterSize(cc.c, 64<<10), cc.out, cc.done, cc.claim); err != nil {
		cc.fail(err)
	}
}
