package host

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/plugins"
)

// downStorage fails every call as a crashed plugin would, until up.
// (The retry against a real plugin process killed mid-write is in
// e2e/plugins_test.go.)
type downStorage struct {
	plugins.Storage
	up    atomic.Bool
	calls atomic.Int64
}

func (d *downStorage) Write([]plugins.Mutation) error {
	d.calls.Add(1)
	if d.up.Load() {
		return nil
	}
	return &Error{Plugin: "bolt", Op: "Write", Err: ErrPluginCrashed}
}

func TestDurableRetriesUntilThePluginIsBack(t *testing.T) {
	s := &downStorage{}
	d := Durable(s, nil, make(chan struct{}))
	done := make(chan error, 1)
	go func() { done <- d.Write(nil) }()
	testwait.Within(t, 30*time.Second, "three retries", func() bool { return s.calls.Load() >= 3 })
	select {
	case err := <-done:
		t.Fatalf("Write returned %v while the plugin was down", err)
	default:
	}
	s.up.Store(true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write did not finish once the plugin was back")
	}
}

// A node shutting down stops waiting for a plugin that stays down, after
// a grace period, instead of holding Raft's shutdown forever.
func TestDurableAbortEndsTheWait(t *testing.T) {
	s := &downStorage{}
	d := Durable(s, nil, make(chan struct{}))
	done := make(chan error, 1)
	go func() { done <- d.Write(nil) }()
	d.(plugins.Aborter).Abort()
	select {
	case err := <-done:
		if !errors.Is(err, ErrPluginCrashed) {
			t.Fatalf("err = %v, want the plugin's error", err)
		}
	case <-time.After(abortGrace + 10*time.Second):
		t.Fatal("Write kept waiting after Abort")
	}
	// Calls that do not fail are not affected.
	s.up.Store(true)
	if err := d.Write(nil); err != nil {
		t.Fatal(err)
	}
}
