package sdk

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
)

// callMux runs a crypto client's uses over one Calls stream, opened on
// first use and again after it breaks. A plugin without Calls (built with
// an older SDK) answers UNIMPLEMENTED once; from then on the client uses
// the unary methods.
type callMux struct {
	open func(ctx context.Context) (pb.Crypto_CallsClient, error)

	mu      sync.Mutex
	unary   bool
	stream  *callStream  // nil or broken: open a new one
	opening *openAttempt // a stream being opened
}

// openAttempt is one opening of the stream; callers wait for it with
// their own deadlines (opening waits for the connection, which can take
// as long as a connect attempt).
type openAttempt struct {
	done chan struct{}
	cs   *callStream
	err  error
}

// errUseUnary tells a caller to make its call the unary way.
var errUseUnary = errors.New("plugin has no Calls stream")

// sendQueue bounds the requests waiting for the stream's sender.
const sendQueue = 256

type outgoing struct {
	ctx context.Context
	req *pb.CallRequest
}

type callStream struct {
	s      pb.Crypto_CallsClient
	cancel context.CancelFunc
	sendq  chan outgoing
	done   chan struct{} // closed when the stream broke

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *pb.CallResponse
	err     error // set once the stream broke; pending calls got it
}

func (m *callMux) current(ctx context.Context) (*callStream, error) {
	m.mu.Lock()
	if m.unary {
		m.mu.Unlock()
		return nil, errUseUnary
	}
	if m.stream != nil && !m.stream.broken() {
		cs := m.stream
		m.mu.Unlock()
		return cs, nil
	}
	a := m.opening
	if a == nil {
		a = &openAttempt{done: make(chan struct{})}
		m.opening = a
		go m.openStream(a)
	}
	m.mu.Unlock()
	select {
	case <-a.done:
		return a.cs, a.err
	case <-ctx.Done():
		return nil, fromStatus(status.FromContextError(ctx.Err()).Err())
	}
}

func (m *callMux) openStream(a *openAttempt) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := m.open(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	defer close(a.done)
	m.opening = nil
	if err != nil {
		cancel()
		if status.Code(err) == codes.Unimplemented {
			m.unary = true
			a.err = errUseUnary
			return
		}
		a.err = fromStatus(err)
		return
	}
	cs := &callStream{s: s, cancel: cancel, sendq: make(chan outgoing, sendQueue), done: make(chan struct{}), pending: map[uint64]chan *pb.CallResponse{}}
	m.stream, a.cs = cs, cs
	go cs.send()
	go cs.receive(m)
}

func (cs *callStream) broken() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.err != nil
}

// send writes queued requests; a Send that blocks (a frozen plugin that
// stopped reading) holds only this goroutine: callers wait with their
// own deadlines.
func (cs *callStream) send() {
	for {
		select {
		case o := <-cs.sendq:
			if o.ctx.Err() != nil {
				continue // its caller gave up: do not make the plugin work for nobody
			}
			if dl, ok := o.ctx.Deadline(); ok {
				o.req.TimeoutMs = uint64(max(time.Until(dl).Milliseconds(), 1))
			}
			if err := cs.s.Send(o.req); err != nil {
				// The reason comes from Recv; make sure it returns.
				cs.cancel()
				return
			}
		case <-cs.done:
			return
		}
	}
}

func (cs *callStream) receive(m *callMux) {
	for {
		resp, err := cs.s.Recv()
		if err != nil {
			if status.Code(err) == codes.Unimplemented {
				m.mu.Lock()
				m.unary = true
				m.mu.Unlock()
				err = errUseUnary
			} else {
				err = fromStatus(err)
			}
			cs.fail(err)
			return
		}
		cs.mu.Lock()
		id := resp.GetId()
		ch, ok := cs.pending[id]
		delete(cs.pending, id)
		sent := id != 0 && id <= cs.next
		cs.mu.Unlock()
		if !sent {
			// An answer to a call never made: nothing this stream says
			// can be trusted to reach the right caller.
			cs.fail(protocolErrorf("calls stream answered call %d, which was never sent", id))
			return
		}
		if ok {
			ch <- resp
		}
	}
}

// fail ends the stream: every pending call gets err.
func (cs *callStream) fail(err error) {
	cs.mu.Lock()
	if cs.err == nil {
		cs.err = err
		close(cs.done)
	}
	pending := cs.pending
	cs.pending = map[uint64]chan *pb.CallResponse{}
	cs.mu.Unlock()
	cs.cancel()
	for _, ch := range pending {
		close(ch)
	}
}

// do sends req on the stream and waits for its answer, ctx's end or the
// stream's failure (a *TransportError, like a unary call's).
func (m *callMux) do(ctx context.Context, req *pb.CallRequest) (*pb.CallResponse, error) {
	cs, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan *pb.CallResponse, 1)
	cs.mu.Lock()
	if cs.err != nil {
		err := cs.err
		cs.mu.Unlock()
		return nil, err
	}
	cs.next++
	req.Id = cs.next
	cs.pending[req.Id] = ch
	cs.mu.Unlock()
	forget := func() {
		cs.mu.Lock()
		delete(cs.pending, req.Id)
		cs.mu.Unlock()
	}
	select {
	case cs.sendq <- outgoing{ctx, req}:
	case <-cs.done:
		cs.mu.Lock()
		err := cs.err
		cs.mu.Unlock()
		return nil, err
	case <-ctx.Done():
		forget()
		return nil, fromStatus(status.FromContextError(ctx.Err()).Err())
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			cs.mu.Lock()
			err := cs.err
			cs.mu.Unlock()
			return nil, err
		}
		if e := resp.GetError(); e != nil {
			return nil, fromStatus(status.Error(codes.Code(e.GetCode()), e.GetMessage()))
		}
		return resp, nil
	case <-ctx.Done():
		forget()
		return nil, fromStatus(status.FromContextError(ctx.Err()).Err())
	}
}

// viaCalls runs one use over the Calls stream, or the unary way when the
// plugin has no stream. get picks the answer out of the response; a
// response of the wrong kind is a protocol error.
func viaCalls[R any](ctx context.Context, m *callMux, req *pb.CallRequest, get func(*pb.CallResponse) *R, unary func() (*R, error)) (*R, error) {
	resp, err := m.do(ctx, req)
	if errors.Is(err, errUseUnary) {
		r, err := unary()
		return r, fromStatus(err)
	}
	if err != nil {
		return nil, err
	}
	r := get(resp)
	if r == nil {
		return nil, protocolErrorf("calls stream answered with the wrong kind of result")
	}
	return r, nil
}
