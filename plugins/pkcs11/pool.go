package pkcs11

import (
	"context"
	"fmt"
	"sync"

	cryptoki "github.com/miekg/pkcs11"
)

// session is one pool slot; open is false until its first borrower (or
// the one after a loss) opens it.
type session struct {
	h    cryptoki.SessionHandle
	open bool
}

// pool lends each concurrent call a session of its own: a session runs
// one operation at a time, and two goroutines interleaving Init and the
// operation on one session corrupt it (SoftHSM crashes). Sessions are
// read/write, since Generate and Destroy change token objects.
type pool struct {
	ctx     *cryptoki.Ctx
	slot    uint
	login   func(cryptoki.SessionHandle) error
	size    int
	ch      chan *session
	done    chan struct{}
	closing sync.Once
}

func newPool(ctx *cryptoki.Ctx, slot uint, size int, first cryptoki.SessionHandle, login func(cryptoki.SessionHandle) error) *pool {
	p := &pool{ctx: ctx, slot: slot, login: login, size: size, ch: make(chan *session, size), done: make(chan struct{})}
	p.ch <- &session{h: first, open: true}
	for i := 1; i < size; i++ {
		p.ch <- &session{}
	}
	return p
}

func (p *pool) get(ctx context.Context) (*session, error) {
	var s *session
	select {
	case <-p.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("pkcs11 plugin: waiting for a session: %w", ctx.Err())
	case s = <-p.ch:
	}
	select {
	case <-p.done:
		p.ch <- s
		return nil, ErrClosed
	default:
	}
	if !s.open {
		h, err := openSession(p.ctx, p.slot, p.login)
		if err != nil {
			p.ch <- s
			return nil, err
		}
		s.h, s.open = h, true
	}
	return s, nil
}

func (p *pool) put(s *session) { p.ch <- s }

// discard closes a lost session and returns its slot empty.
func (p *pool) discard(s *session) {
	_ = p.ctx.CloseSession(s.h)
	s.h, s.open = 0, false
	p.ch <- s
}

// close stops lending, waits for every session to come back and closes
// them (which ends the login).
func (p *pool) close() {
	p.closing.Do(func() {
		close(p.done)
		for range p.size {
			s := <-p.ch
			if s.open {
				_ = p.ctx.CloseSession(s.h)
			}
		}
	})
}

// openSession opens a read/write session and logs the user in when the
// token has no login for this process (the first session, or after
// every session was lost).
func openSession(ctx *cryptoki.Ctx, slot uint, login func(cryptoki.SessionHandle) error) (cryptoki.SessionHandle, error) {
	h, err := ctx.OpenSession(slot, cryptoki.CKF_SERIAL_SESSION|cryptoki.CKF_RW_SESSION)
	if err != nil {
		return 0, fmt.Errorf("pkcs11 plugin: C_OpenSession: %w", err)
	}
	info, err := ctx.GetSessionInfo(h)
	if err == nil && (info.State == cryptoki.CKS_RW_PUBLIC_SESSION || info.State == cryptoki.CKS_RO_PUBLIC_SESSION) {
		err = login(h)
	}
	if err != nil {
		_ = ctx.CloseSession(h)
		return 0, err
	}
	return h, nil
}
