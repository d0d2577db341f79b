package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	cryptoki "github.com/miekg/pkcs11"
)

// ErrClosed is returned by every method of a Seal after Close.
var ErrClosed = errors.New("pkcs11 seal: the seal is closed")

// session is one pool slot. A slot whose session was lost (or never
// opened) has open == false and is opened by its next borrower.
type session struct {
	h    cryptoki.SessionHandle
	open bool
}

// pool hands each concurrent user a session of its own: a PKCS#11 session
// runs one operation at a time, and two goroutines interleaving
// C_EncryptInit/C_Encrypt on one session corrupt it (SoftHSM crashes).
//
// The channel holds exactly size slots; borrowing takes one (waiting, or
// giving up when ctx ends or the pool closes), returning puts it back.
type pool struct {
	ctx  *cryptoki.Ctx
	slot uint
	// relogin logs the user in again on a fresh session that came up in a
	// public state (every session had been closed, so the login ended).
	relogin func(cryptoki.SessionHandle) error

	size      int
	ch        chan *session
	done      chan struct{}
	closeOnce sync.Once

	inUse   atomic.Int32 // borrowed right now
	waiting atomic.Int32 // callers waiting for a free session
	peak    atomic.Int32 // most ever borrowed at once
	opened  atomic.Int64 // sessions opened over the pool's life
}

func newPool(ctx *cryptoki.Ctx, slot uint, size int, first cryptoki.SessionHandle, relogin func(cryptoki.SessionHandle) error) *pool {
	p := &pool{ctx: ctx, slot: slot, relogin: relogin, size: size,
		ch: make(chan *session, size), done: make(chan struct{})}
	p.ch <- &session{h: first, open: true}
	p.opened.Add(1)
	for i := 1; i < size; i++ {
		p.ch <- &session{}
	}
	return p
}

// get borrows a session, opening (and if need be logging in) a fresh one
// for an empty slot.
func (p *pool) get(ctx context.Context) (*session, error) {
	if p.closed() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var s *session
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	select {
	case <-p.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("pkcs11 seal: waiting for a session: %w", ctx.Err())
	case s = <-p.ch:
	}
	// Both cases may have been ready; Close wins.
	if p.closed() {
		p.ch <- s
		return nil, ErrClosed
	}
	if !s.open {
		if err := p.open(s); err != nil {
			p.ch <- s
			return nil, err
		}
	}
	n := p.inUse.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	return s, nil
}

func (p *pool) open(s *session) error {
	h, err := p.ctx.OpenSession(p.slot, cryptoki.CKF_SERIAL_SESSION)
	if err != nil {
		return fmt.Errorf("pkcs11 seal: C_OpenSession: %w", err)
	}
	info, err := p.ctx.GetSessionInfo(h)
	if err == nil && info.State == cryptoki.CKS_RO_PUBLIC_SESSION {
		err = p.relogin(h)
	}
	if err != nil {
		_ = p.ctx.CloseSession(h)
		return err
	}
	s.h, s.open = h, true
	p.opened.Add(1)
	return nil
}

// closed reports whether close has begun.
func (p *pool) closed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// put returns a healthy session.
func (p *pool) put(s *session) {
	p.inUse.Add(-1)
	p.ch <- s
}

// discard closes a session that failed with sessionLost and returns its
// slot empty, to be reopened by the next borrower.
func (p *pool) discard(s *session) {
	_ = p.ctx.CloseSession(s.h)
	s.h, s.open = 0, false
	p.inUse.Add(-1)
	p.ch <- s
}

// close stops lending and waits until every borrowed session is back. It
// returns the slots, for the caller to log out and close their sessions.
// Only the first call returns them.
func (p *pool) close() []*session {
	var all []*session
	p.closeOnce.Do(func() {
		close(p.done)
		all = make([]*session, 0, p.size)
		for range p.size {
			all = append(all, <-p.ch)
		}
	})
	return all
}
