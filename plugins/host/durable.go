package host

import (
	"bytes"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/plugins"
)

// Durable wraps a plugin's storage for the state machine, which cannot
// take a failed write: Raft has committed the entry, so it must be
// applied. A call that fails because the plugin crashed, timed out or is
// being restarted is retried, with backoff, until it succeeds or stop is
// closed. That is safe because the state machine is the store's only
// writer and its batches are absolute: applying a batch twice gives the
// state of applying it once. A scan interrupted by a crash resumes after
// the last key it delivered. Views are not retried: a lost view fails the
// snapshot being written, and Raft takes the next one later.
func Durable(s plugins.Storage, log hclog.Logger, stop <-chan struct{}) plugins.Storage {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &durable{s: s, log: log, stop: stop, aborted: make(chan struct{})}
}

type durable struct {
	s       plugins.Storage
	log     hclog.Logger
	stop    <-chan struct{}
	closeFn func() error // after the store: stops the process

	abortOnce sync.Once
	aborted   chan struct{} // closed by Abort
}

// abortGrace is how long retries go on after Abort: a plugin that is
// merely restarting is back well within it.
const abortGrace = 5 * time.Second

// Abort implements plugins.Aborter.
func (d *durable) Abort() { d.abortOnce.Do(func() { close(d.aborted) }) }

// DurableStorage is Durable for the plugin's own storage, retrying until
// the Client is closed; its Close closes the store, then the Client.
func (c *Client) DurableStorage() plugins.Storage {
	return &durable{s: c.storage, log: c.log, stop: c.stop, closeFn: c.Close, aborted: make(chan struct{})}
}

var _ plugins.HeadReader = (*durable)(nil)

// retriable reports whether err means "the process, not the request,
// failed".
func retriable(err error) bool {
	return errors.Is(err, ErrPluginCrashed) || errors.Is(err, ErrPluginUnavailable) || errors.Is(err, ErrPluginTimeout)
}

func (d *durable) retry(op string, fn func() error) error {
	wait := 50 * time.Millisecond
	var giveUp <-chan time.Time // set once aborted
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retriable(err) {
			return err
		}
		if attempt == 1 || attempt%20 == 0 {
			d.log.Warn("storage plugin call failed; retrying until the plugin is back", "op", op, "attempt", attempt, "error", err)
		}
		aborted := d.aborted
		if giveUp != nil {
			aborted = nil // already counting down
		}
		select {
		case <-d.stop:
			return err
		case <-giveUp:
			return err
		case <-aborted:
			giveUp = time.After(abortGrace)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (d *durable) Get(key []byte) (v []byte, err error) {
	err = d.retry("Get", func() error { v, err = d.s.Get(key); return err })
	return v, err
}

func (d *durable) GetHead(key []byte, n int) (v []byte, err error) {
	hr, ok := d.s.(plugins.HeadReader)
	if !ok {
		if v, err = d.Get(key); len(v) > n {
			v = v[:n]
		}
		return v, err
	}
	err = d.retry("GetHead", func() error { v, err = hr.GetHead(key, n); return err })
	return v, err
}

func (d *durable) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return d.ScanFrom(prefix, nil, fn)
}

func (d *durable) ScanFrom(prefix, from []byte, fn func(k, v []byte) error) error {
	var last []byte
	return d.retry("Scan", func() error {
		start := from
		if last != nil {
			start = append(bytes.Clone(last), 0) // the next key after last
		}
		return d.s.ScanFrom(prefix, start, func(k, v []byte) error {
			if err := fn(k, v); err != nil {
				return err
			}
			last = append(last[:0], k...)
			return nil
		})
	})
}

func (d *durable) Write(batch []plugins.Mutation) error {
	return d.retry("Write", func() error { return d.s.Write(batch) })
}

func (d *durable) View() (plugins.View, error) { return d.s.View() }

func (d *durable) Close() error {
	err := d.s.Close()
	if d.closeFn != nil {
		err = errors.Join(err, d.closeFn())
	}
	return err
}
