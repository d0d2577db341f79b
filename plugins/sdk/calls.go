package sdk

import (
	"context"
	"errors"
	"sync"

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

	mu     sync.Mutex
	unary  bool
	stream *callStream // nil or broken: open a new one
}

// errUseUnary tells a caller to make its call the unary way.
var errUseUnary = errors.New("plugin has no Calls stream")

// sendQueue bounds the requests waiting for the stream's sender.
const sendQueue = 256

type callStream struct {
	s      pb.Crypto_CallsClient
	cancel context.CancelFunc
	sendq  chan *pb.CallRequest
	done   chan struct{} // closed when the stream broke

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *pb.CallResponse
	err     error // set once the stream broke; pending calls got it
}

func (m *callMux) current() (*callStream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unary {
		return nil, errUseUnary
	}
	if m.stream != nil && !m.stream.broken() {
		return m.stream, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := m.open(ctx)
	if err != nil {
		cancel()
		if status.Code(err) == codes.Unimplemented {
			m.unary = true
			return nil, errUseUnary
		}
		return nil, fromStatus(err)
	}
	cs := &callStream{s: s, cancel: cancel, sendq: make(chan *pb.CallRequest, sendQueue), done: make(chan struct{}), pending: map[uint64]chan *pb.CallResponse{}}
	m.stream = cs
	go cs.send()
	go cs.receive(m)
	return cs, nil
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
		case req := <-cs.sendq:
			if err := cs.s.Send(req); err != nil {
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
		ch, ok := cs.pending[resp.GetId()]
		delete(cs.pending, resp.GetId())
		cs.mu.Unlock()
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
	cs, err := m.current()
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
	case cs.sendq <- req:
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
