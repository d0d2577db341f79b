package pkcs11

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	cryptoki "github.com/miekg/pkcs11"
)

// Session is a borrowed PKCS#11 session. It belongs to the goroutine that
// got it until Put or Discard.
type Session struct {
	H    cryptoki.SessionHandle
	open bool // false: lost or never opened; the next borrower opens it
}

// pool hands each concurrent user a session of its own: a PKCS#11 session
// runs one operation at a time, and two goroutines interleaving
// C_EncryptInit/C_Encrypt on one session corrupt it (SoftHSM crashes).
//
// The channel holds exactly size slots; borrowing takes one (waiting, or
// giving up when ctx ends or the pool closes), returning puts it back.
type pool struct {
	t     *Token
	flags uint

	size      int
	ch        chan *Session
	done      chan struct{}
	closeOnce sync.Once

	inUse   atomic.Int32
	waiting atomic.Int32
	peak    atomic.Int32
	opened  atomic.Int64
}

func newPool(t *Token, flags uint, size int, first cryptoki.SessionHandle) *pool {
	p := &pool{t: t, flags: flags, size: size, ch: make(chan *Session, size), done: make(chan struct{})}
	p.ch <- &Session{H: first, open: true}
	p.opened.Add(1)
	for i := 1; i < size; i++ {
		p.ch <- &Session{}
	}
	return p
}

// Stats describe the pool, for tests and monitoring.
type Stats struct {
	Size    int   // MaxSessions
	InUse   int   // borrowed right now
	Waiting int   // callers waiting for a free session
	Peak    int   // most ever borrowed at once
	Opened  int64 // sessions opened over the Token's life
}

// Stats reports the pool's counters.
func (t *Token) Stats() Stats {
	p := t.pool
	return Stats{Size: p.size, InUse: int(p.inUse.Load()), Waiting: int(p.waiting.Load()), Peak: int(p.peak.Load()), Opened: p.opened.Load()}
}

// Size is the number of sessions (Config.MaxSessions or the default).
func (t *Token) Size() int { return t.pool.size }

// Closed reports whether Close has begun.
func (t *Token) Closed() bool {
	select {
	case <-t.pool.done:
		return true
	default:
		return false
	}
}

// Get borrows a session, waiting while all are lent out, until ctx ends
// (ctx's error) or the Token closes (ErrClosed). An empty slot gets a
// fresh session, logged in again if the token forgot the login. Return
// the session with Put, or Discard when it failed with SessionLost.
func (t *Token) Get(ctx context.Context) (*Session, error) {
	p := t.pool
	if t.Closed() {
		return nil, t.errClosed()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var s *Session
	p.waiting.Add(1)
	select {
	case <-p.done:
		p.waiting.Add(-1)
		return nil, t.errClosed()
	case <-ctx.Done():
		p.waiting.Add(-1)
		return nil, fmt.Errorf("%s: waiting for a session: %w", t.d.Name, ctx.Err())
	case s = <-p.ch:
		p.waiting.Add(-1)
	}
	// Both cases may have been ready; Close wins.
	if t.Closed() {
		p.ch <- s
		return nil, t.errClosed()
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

func (t *Token) errClosed() error { return fmt.Errorf("%s: %w", t.d.Name, ErrClosed) }

func (p *pool) open(s *Session) error {
	c := p.t.Ctx
	h, err := c.OpenSession(p.t.Slot, p.flags)
	if err != nil {
		return fmt.Errorf("%s: C_OpenSession: %w", p.t.d.Name, err)
	}
	info, err := c.GetSessionInfo(h)
	if err == nil && (info.State == cryptoki.CKS_RO_PUBLIC_SESSION || info.State == cryptoki.CKS_RW_PUBLIC_SESSION) {
		err = p.t.relogin(h)
	}
	if err != nil {
		_ = c.CloseSession(h)
		return err
	}
	s.H, s.open = h, true
	p.opened.Add(1)
	return nil
}

// Put returns a healthy session.
func (t *Token) Put(s *Session) {
	t.pool.inUse.Add(-1)
	t.pool.ch <- s
}

// Discard closes a session that failed with SessionLost and returns its
// slot empty, to be reopened by the next borrower.
func (t *Token) Discard(s *Session) {
	_ = t.Ctx.CloseSession(s.H)
	s.H, s.open = 0, false
	t.pool.inUse.Add(-1)
	t.pool.ch <- s
}

// close stops lending and waits until every borrowed session is back. It
// returns the slots for Close to log out and close. Only the first call
// returns them.
func (p *pool) close() []*Session {
	var all []*Session
	p.closeOnce.Do(func() {
		close(p.done)
		all = make([]*Session, 0, p.size)
		for range p.size {
			all = append(all, <-p.ch)
		}
	})
	return all
}
