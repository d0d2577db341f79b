package catalog

import (
	"context"
	"fmt"
	"sync"

	"github.com/keyraft/keyraft/plugins/sdk"
)

// A call to a plugin process costs a round trip (~100 µs here) whatever
// its size, so concurrent callers share calls: while MaxInFlight calls to
// a backend are running, new items queue up, and the next call carries
// every queued item (up to MaxBatch). An idle backend adds no wait: the
// first caller calls at once. This is group commit for crypto calls.

// Coalescing defaults.
const (
	DefaultMaxInFlight = 4
	DefaultMaxBatch    = 1024
)

type waiter[I, R any] struct {
	items []I
	out   []R
	err   error
	done  chan struct{}
}

type coalescer[I, R any] struct {
	call        func(ctx context.Context, items []I) ([]R, error)
	maxInFlight int
	maxBatch    int

	mu       sync.Mutex
	inFlight int
	queue    []*waiter[I, R]
	queued   int // items in queue
}

func newCoalescer[I, R any](maxInFlight, maxBatch int, call func(context.Context, []I) ([]R, error)) *coalescer[I, R] {
	return &coalescer[I, R]{call: call, maxInFlight: maxInFlight, maxBatch: maxBatch}
}

// do runs items as part of some call and returns their results. A batch
// larger than maxBatch is sent alone.
func (c *coalescer[I, R]) do(ctx context.Context, items []I) ([]R, error) {
	if len(items) == 0 {
		return c.call(ctx, items)
	}
	w := &waiter[I, R]{items: items, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, w)
	c.queued += len(items)
	run := c.inFlight < c.maxInFlight
	if run {
		c.inFlight++
	}
	c.mu.Unlock()
	if run {
		c.drain(true)
	}
	select {
	case <-w.done:
		return w.out, w.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// drain sends one call with what is queued; if more queued up meanwhile,
// a goroutine goes on, so the caller that drained gets its answer now.
func (c *coalescer[I, R]) drain(first bool) {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.inFlight--
			c.mu.Unlock()
			return
		}
		var batch []*waiter[I, R]
		n := 0
		for len(c.queue) > 0 && (n == 0 || n+len(c.queue[0].items) <= c.maxBatch) {
			w := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			batch = append(batch, w)
			n += len(w.items)
		}
		c.queued -= n
		c.mu.Unlock()
		c.send(batch, n)
		if first {
			c.mu.Lock()
			more := len(c.queue) > 0
			if !more {
				c.inFlight--
			}
			c.mu.Unlock()
			if more {
				go c.drain(false)
			}
			return
		}
	}
}

func (c *coalescer[I, R]) send(batch []*waiter[I, R], n int) {
	var items []I
	if len(batch) == 1 {
		items = batch[0].items
	} else {
		items = make([]I, 0, n)
		for _, w := range batch {
			items = append(items, w.items...)
		}
	}
	// The call serves several requests, so no single request's context
	// may cancel it; the plugin host bounds it with its call timeout.
	out, err := c.safeCall(items)
	if err == nil && len(out) != n {
		err = fmt.Errorf("crypto backend returned %d results for %d items", len(out), n)
	}
	off := 0
	for _, w := range batch {
		if err == nil {
			w.out = out[off : off+len(w.items) : off+len(w.items)]
		}
		w.err = err
		off += len(w.items)
		close(w.done)
	}
}

// safeCall makes the call; a panic in it becomes the call's error, so
// every waiter of the batch gets an answer and the in-flight slot is
// given back.
func (c *coalescer[I, R]) safeCall(items []I) (out []R, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, fmt.Errorf("crypto backend call failed: panic: %v", v)
		}
	}()
	return c.call(context.Background(), items)
}

// Coalesced wraps a crypto backend so that concurrent item calls share
// plugin round trips. The backend must return one result per item (the
// SDK client checks that), which is what lets the results be split.
func Coalesced(b sdk.CryptoBackend, maxInFlight, maxBatch int) sdk.CryptoBackend {
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	return &coalesced{
		CryptoBackend: b,
		enc:           newCoalescer(maxInFlight, maxBatch, b.Encrypt),
		dec:           newCoalescer(maxInFlight, maxBatch, b.Decrypt),
		sign:          newCoalescer(maxInFlight, maxBatch, b.Sign),
		verify:        newCoalescer(maxInFlight, maxBatch, b.Verify),
		hmac:          newCoalescer(maxInFlight, maxBatch, b.HMAC),
	}
}

type coalesced struct {
	sdk.CryptoBackend
	enc    *coalescer[sdk.EncryptItem, sdk.EncryptResult]
	dec    *coalescer[sdk.DecryptItem, sdk.DecryptResult]
	sign   *coalescer[sdk.SignItem, sdk.SignResult]
	verify *coalescer[sdk.VerifyItem, sdk.VerifyResult]
	hmac   *coalescer[sdk.HMACItem, sdk.HMACResult]
}

func (c *coalesced) Encrypt(ctx context.Context, items []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
	return c.enc.do(ctx, items)
}
func (c *coalesced) Decrypt(ctx context.Context, items []sdk.DecryptItem) ([]sdk.DecryptResult, error) {
	return c.dec.do(ctx, items)
}
func (c *coalesced) Sign(ctx context.Context, items []sdk.SignItem) ([]sdk.SignResult, error) {
	return c.sign.do(ctx, items)
}
func (c *coalesced) Verify(ctx context.Context, items []sdk.VerifyItem) ([]sdk.VerifyResult, error) {
	return c.verify.do(ctx, items)
}
func (c *coalesced) HMAC(ctx context.Context, items []sdk.HMACItem) ([]sdk.HMACResult, error) {
	return c.hmac.do(ctx, items)
}
