package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/seal"
)

// Auto-unseal errors.
var (
	// ErrAutoSeal: the node unseals itself with its seal; shares are not
	// taken.
	ErrAutoSeal = errors.New("cluster: this node unseals itself with its seal; unseal shares are not used")
	// ErrSealUnavailable: the auto-unseal seal cannot be opened or used
	// right now (HSM missing, wrong PIN, key missing, device error).
	ErrSealUnavailable = errors.New("cluster: the seal is unavailable")
)

// sealTypes are the seals a root key can be wrapped by.
var sealTypes = []string{"shamir", "pkcs11"}

// rootKeyRecord is where the root key wrapped by a seal of type t lives.
// Shamir keeps the original record; each auto seal has its own, so a
// cluster can hold both during a seal migration.
func rootKeyRecord(t string) string {
	if t == "shamir" {
		return fsm.RecordRootKey
	}
	return fsm.RecordRootKey + "-" + t
}

// healthChecker is the optional ability of a seal to check itself.
type healthChecker interface {
	Healthy(ctx context.Context) error
}

// autoSealState is the node's opened auto-unseal seal and its health.
type autoSealState struct {
	mu      sync.Mutex
	s       seal.Seal
	lastErr string
	// failing is set while the seal's last use or check failed.
	failing atomic.Bool
	reason  atomic.Pointer[string]
}

// openAutoSeal returns the node's auto-unseal seal, opening it on first
// use; nil, nil for a Shamir node. It returns an error wrapping
// ErrSealUnavailable when the seal cannot be opened.
func (n *Node) openAutoSeal(ctx context.Context) (seal.Seal, error) {
	if n.cfg.AutoSeal == nil {
		return nil, nil
	}
	a := &n.autoSeal
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.s != nil {
		return a.s, nil
	}
	s, err := n.cfg.AutoSeal(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSealUnavailable, err)
	}
	a.s = s
	return s, nil
}

// SealHealth reports whether the auto-unseal seal answered its last
// check, and why not. A Shamir node is always healthy.
func (n *Node) SealHealth() (bool, string) {
	if n.cfg.AutoSeal == nil {
		return true, ""
	}
	if n.autoSeal.failing.Load() {
		if r := n.autoSeal.reason.Load(); r != nil {
			return false, *r
		}
		return false, "unknown"
	}
	return true, ""
}

// AutoSealed reports whether the node unseals itself.
func (n *Node) AutoSealed() bool { return n.cfg.AutoSeal != nil }

// autoUnsealLoop unseals the node with its seal whenever it is sealed
// (at start, after a restore) unless an operator sealed it, finishes a
// pending join with the seal, and checks the seal's health while
// unsealed. Failures are logged once each (not on every retry) and
// retried with backoff up to 30 s.
func (n *Node) autoUnsealLoop() {
	backoff := time.Second
	var lastLogged string
	note := func(err error) {
		msg := err.Error()
		if msg != lastLogged {
			n.log.Error("auto-unseal failed; the node stays sealed and retries", "error", msg)
			lastLogged = msg
		}
		n.autoSeal.reason.Store(&msg)
		n.autoSeal.failing.Store(true)
	}
	nextCheck := time.Time{}
	for {
		wait := 200 * time.Millisecond
		func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			switch {
			case n.operatorSealed.Load():
				return
			case n.Joining():
				return // the joiner finishes it (CompleteAutoJoin)
			case n.barrier.Sealed():
				cfg, _ := n.sealConfig()
				if cfg == nil || !n.CaughtUp() {
					return // not initialized (or not joined) yet
				}
				if cfg.Type != n.cfg.AutoSealType {
					// The cluster is still on another seal: a migration
					// waits for 'operator unseal -migrate'.
					if msg := "waiting for 'keyraft operator unseal -migrate' to move the cluster from the " + cfg.Type + " seal"; msg != lastLogged {
						n.log.Warn(msg)
						lastLogged = msg
					}
					return
				}
				s, err := n.openAutoSeal(ctx)
				if err == nil {
					err = n.unsealWithSeal(ctx, s)
				}
				if err != nil {
					note(err)
					wait, backoff = backoff, min(backoff*2, 30*time.Second)
					return
				}
				n.log.Info("unsealed with the seal", "seal", n.cfg.AutoSealType)
				lastLogged = ""
				backoff = time.Second
				n.autoSeal.failing.Store(false)
			default:
				if time.Now().Before(nextCheck) {
					return
				}
				nextCheck = time.Now().Add(10 * time.Second)
				s, err := n.openAutoSeal(ctx)
				hc, ok := s.(healthChecker)
				if err == nil && ok {
					err = hc.Healthy(ctx)
				}
				if err != nil {
					// Unsealed already: keep serving from the root key in
					// memory, and report the seal degraded.
					msg := err.Error()
					n.autoSeal.reason.Store(&msg)
					if !n.autoSeal.failing.Swap(true) {
						n.log.Error("the seal is unreachable; serving with the keys in memory (degraded)", "error", err)
					}
					return
				}
				if n.autoSeal.failing.Swap(false) {
					n.log.Info("the seal answers again")
				}
			}
		}()
		select {
		case <-n.closed:
			return
		case <-time.After(wait):
		}
	}
}

// closeAutoSeal releases the seal (PKCS#11 sessions, Finalize).
func (n *Node) closeAutoSeal() {
	a := &n.autoSeal
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.s.(interface{ Close() error }); ok {
		if err := c.Close(); err != nil {
			n.log.Warn("closing the seal", "error", err)
		}
	}
	a.s = nil
}

// CompleteAutoJoin finishes a pending join with the node's own seal: an
// auto-unseal node proves it can use the cluster's seal instead of
// presenting shares. It returns ErrInvalidRequest when the node is not
// joining or has no auto seal, or the join's errors.
func (n *Node) CompleteAutoJoin(ctx context.Context) error {
	if n.cfg.AutoSeal == nil {
		return fmt.Errorf("%w: this node has no auto-unseal seal", ErrInvalidRequest)
	}
	n.mu.Lock()
	j := n.joining
	n.mu.Unlock()
	if j == nil {
		return fmt.Errorf("%w: this node is not joining", ErrInvalidRequest)
	}
	s, err := n.openAutoSeal(ctx)
	if err != nil {
		return err
	}
	return n.completeJoin(ctx, j, s)
}
