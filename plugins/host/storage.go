package host

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyraft/keyraft/plugins"
)

// Storage returns the plugin's storage backend as a plugins.Storage (and
// plugins.HeadReader). Calls go to whichever process is running; a view
// stays with the process that opened it and fails with ErrViewLost once
// that process is gone.
func (c *Client) Storage() plugins.Storage { return c.storage }

type storage struct {
	c      *Client
	closed atomic.Bool
}

var (
	_ plugins.Storage    = (*storage)(nil)
	_ plugins.HeadReader = (*storage)(nil)
	_ plugins.Compactor  = (*storage)(nil)
)

// compactTimeout bounds a Compact, which copies the whole store.
const compactTimeout = 30 * time.Minute

// Compact forwards plugins.Compactor to the plugin; a backend without
// the ability answers plugins.ErrUnsupported. It is not bounded by the
// per-call timeout (a copy of a large store takes long), only by
// compactTimeout.
func (s *storage) Compact() error {
	if s.closed.Load() {
		return plugins.ErrStorageClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), compactTimeout)
	defer cancel()
	in, err := s.c.acquire(ctx)
	if err != nil {
		return &Error{s.c.cfg.Name, "Compact", err}
	}
	err = in.storage.Compact(ctx)
	if errors.Is(err, plugins.ErrUnsupported) {
		return err
	}
	return s.c.classify(context.Background(), errors.Is(ctx.Err(), context.DeadlineExceeded), "Compact", in, err)
}

func (s *storage) Get(key []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, plugins.ErrStorageClosed
	}
	var v []byte
	err := s.c.call(context.Background(), "Get", func(ctx context.Context, in *instance) (err error) {
		v, err = in.storage.Get(ctx, 0, key)
		return err
	})
	return v, err
}

func (s *storage) GetHead(key []byte, n int) ([]byte, error) {
	if s.closed.Load() {
		return nil, plugins.ErrStorageClosed
	}
	var v []byte
	err := s.c.call(context.Background(), "GetHead", func(ctx context.Context, in *instance) (err error) {
		v, err = in.storage.GetHead(ctx, 0, key, n)
		return err
	})
	return v, err
}

func (s *storage) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return s.ScanFrom(prefix, nil, fn)
}

func (s *storage) ScanFrom(prefix, from []byte, fn func(k, v []byte) error) error {
	if s.closed.Load() {
		return plugins.ErrStorageClosed
	}
	in, err := s.c.acquireFor("Scan")
	if err != nil {
		return err
	}
	return s.c.scan(in, false, 0, prefix, from, fn)
}

// scan streams a scan with an idle timeout that does not count the time
// spent in fn; fn's own error comes back unchanged.
func (c *Client) scan(in *instance, onView bool, view uint64, prefix, from []byte, fn func(k, v []byte) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := newIdleTimer(c.cfg.Timeout, cancel)
	defer timer.pause()
	var fnErr error
	err := in.storage.Scan(ctx, view, prefix, from, func(k, v []byte) error {
		timer.pause()
		if fnErr = fn(k, v); fnErr != nil {
			return fnErr
		}
		timer.resume()
		return nil
	})
	if err != nil && fnErr != nil && errors.Is(err, fnErr) {
		return fnErr
	}
	err = c.classify(context.Background(), timer.fired.Load(), "Scan", in, err)
	if onView && err != nil && (errors.Is(err, ErrPluginCrashed) || in.isDown()) {
		return &Error{c.cfg.Name, "Scan", ErrViewLost}
	}
	return err
}

func (s *storage) Write(batch []plugins.Mutation) error {
	if s.closed.Load() {
		return plugins.ErrStorageClosed
	}
	var used *instance
	err := s.c.call(context.Background(), "Write", func(ctx context.Context, in *instance) error {
		used = in
		return in.storage.Write(ctx, batch)
	})
	if (errors.Is(err, ErrPluginTimeout) || errors.Is(err, ErrPluginUnavailable)) && used != nil {
		// The batch may still be queued in the plugin and land after a
		// later one: the caller retries writes (see Durable), so the
		// process is stopped first, by SIGKILL (a frozen process never
		// answers a polite shutdown), and stop returns once it exited.
		s.c.log.Error("a write did not complete; killing the plugin so that it cannot land later", "pid", used.pid, "error", err)
		used.stop(0)
	}
	return err
}

func (s *storage) View() (plugins.View, error) {
	if s.closed.Load() {
		return nil, plugins.ErrStorageClosed
	}
	var (
		id  uint64
		own *instance
	)
	err := s.c.call(context.Background(), "OpenView", func(ctx context.Context, in *instance) (err error) {
		own = in
		id, err = in.storage.OpenView(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &view{s: s, in: own, id: id}, nil
}

// Close closes the store inside the plugin; the process keeps running
// until Client.Close.
func (s *storage) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.c.call(context.Background(), "Close", func(ctx context.Context, in *instance) error {
		return in.storage.Close(ctx)
	})
}

type view struct {
	s    *storage
	in   *instance
	id   uint64
	once sync.Once
}

func (v *view) Get(key []byte) ([]byte, error) {
	var out []byte
	err := v.s.c.callOn(v.in, "Get", func(ctx context.Context) (err error) {
		out, err = v.in.storage.Get(ctx, v.id, key)
		return err
	})
	return out, err
}

func (v *view) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return v.ScanFrom(prefix, nil, fn)
}

func (v *view) ScanFrom(prefix, from []byte, fn func(k, v []byte) error) error {
	if v.in.isDown() {
		return &Error{v.s.c.cfg.Name, "Scan", ErrViewLost}
	}
	return v.s.c.scan(v.in, true, v.id, prefix, from, fn)
}

// Close closes the view; a view whose process is gone is closed already.
func (v *view) Close() error {
	var err error
	v.once.Do(func() {
		if v.in.isDown() {
			return
		}
		err = v.s.c.callOn(v.in, "CloseView", func(ctx context.Context) error {
			return v.in.storage.CloseView(ctx, v.id)
		})
		if errors.Is(err, ErrViewLost) {
			err = nil
		}
	})
	return err
}

var _ plugins.Compactor = (*durable)(nil)

// Compact forwards to the wrapped storage, retried like a write while the
// plugin restarts: compacting twice is compacting once.
func (d *durable) Compact() error {
	c, ok := d.s.(plugins.Compactor)
	if !ok {
		return plugins.ErrUnsupported
	}
	return d.retry("Compact", c.Compact)
}
