package transit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// LifecycleDue does the leader's scheduled lifecycle work on every key:
// it records the activation of pre-active keys whose activation_time has
// come, destroys keys whose pending window has passed (with every
// version's material removed from the record, and a purge request in the
// same commit), and rotates keys whose newest version reached its share
// of SafeEncryptions; then it destroys the crypto-backend objects whose
// destruction was committed and not yet confirmed (RetryBackendDestroys).
// The server calls it periodically on the leader,
// next to RotateDue; each change is one Raft commit with its own audit
// event. It returns how many keys it changed.
func (e *Engine) LifecycleDue(ctx context.Context) (int, error) {
	names, err := e.store.List(fsm.RecordTransitKey)
	if err != nil {
		return 0, err
	}
	changed := 0
	var errs []error
	for _, name := range names {
		l, err := e.get(name)
		if err != nil || l == nil {
			continue
		}
		p, now := l.policy, e.Now().UTC()
		var op string
		switch {
		case p.Lifecycle != nil && p.Lifecycle.State == StatePreActive && p.state(now) == StateActive:
			op = "transit/activate"
		case p.due(now):
			op = "transit/destroy"
		case p.state(now) == StateActive:
			over, _, err := e.overUsed(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !over {
				continue
			}
			op = "transit/usage-rotate"
		default:
			continue
		}
		if err := e.dueChange(ctx, name, op); err != nil {
			if !errors.Is(err, errNothingToDo) {
				errs = append(errs, fmt.Errorf("transit: %s of %q: %w", op, name, err))
			}
			continue
		}
		e.log.Info("lifecycle change", "key", name, "operation", op)
		changed++
	}
	// Backend objects whose destruction was committed but not confirmed.
	if n, err := e.RetryBackendDestroys(ctx); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		e.log.Info("destroyed backend objects left over by earlier changes", "objects", n)
	}
	return changed, errors.Join(errs...)
}

// dueChange commits one scheduled change, checked again on the record it
// modifies.
func (e *Engine) dueChange(ctx context.Context, name, op string) error {
	ev := &audit.Event{Operation: op, Key: name, Identity: "keyraft", Outcome: audit.Allowed}
	ctx = audit.WithEvent(ctx, ev)
	// A key on a crypto backend (an HSM) is destroyed there too, once the
	// cluster has committed that it is gone (and recorded which objects
	// are to go, in the same commit: see fsm.RecordTransitBackendDestroy).
	var onBackend *Policy
	_, err := e.updateTxn(ctx, name, func(p *Policy) (*Policy, []store.Write, error) {
		next, err := e.dueChangeOf(ctx, p, op, &onBackend)
		if err != nil || op != "transit/destroy" {
			return next, nil, err
		}
		w := []store.Write{store.PurgeWrite(fsm.RecordTransitKey + name)}
		if onBackend != nil {
			w = append(w, destroyWrites(onBackend.Backend, name, onBackend.BackendKeys)...)
		}
		return next, w, nil
	})
	if onBackend != nil {
		if err == nil {
			e.destroyRecorded(ctx, onBackend.Backend, onBackend.BackendKeys)
		}
		onBackend.zero()
	}
	return err
}

// dueChangeOf is dueChange's change of the record p; *onBackend gets a
// copy of a destroyed key on a crypto backend, to destroy there.
func (e *Engine) dueChangeOf(ctx context.Context, p *Policy, op string, onBackend **Policy) (*Policy, error) {
	now := e.Now().UTC()
	if p == nil {
		return nil, errNothingToDo
	}
	switch op {
	case "transit/activate":
		if p.Lifecycle == nil || p.Lifecycle.State != StatePreActive || p.state(now) != StateActive {
			return nil, errNothingToDo
		}
		p.Lifecycle.State = StateActive
		p.Lifecycle.StateChangedTime = p.Lifecycle.ActivationTime
		p.record(ctx, p.Lifecycle.ActivationTime, EventActivate, 0, "activation_time reached")
	case "transit/destroy":
		if !p.due(now) {
			return nil, errNothingToDo
		}
		// The backend's objects (none for a key in this process) go too.
		if *onBackend != nil { // an earlier attempt's copy
			(*onBackend).zero()
		}
		*onBackend = &Policy{Name: p.Name, Backend: p.Backend, BackendKeys: map[int]*BackendKey{}}
		for n, k := range p.BackendKeys {
			(*onBackend).BackendKeys[n] = &BackendKey{Handle: append([]byte(nil), k.Handle...)}
		}
		p.destroyMaterial()
		p.Lifecycle.DestroyTime = now
		p.setState(ctx, now, StateDestroyed, EventDestroy, "material of versions 1-"+strconv.Itoa(p.LatestVersion)+" removed")
	case "transit/usage-rotate":
		over, n, err := e.overUsed(p)
		if err != nil {
			return nil, err
		}
		if !over || p.state(now) != StateActive {
			return nil, errNothingToDo
		}
		return p, e.rotateFor(ctx, p, fmt.Sprintf("version %d made %d encryptions", p.LatestVersion, n))
	}
	return p, nil
}

// SweepCache drops cached keys whose record changed or went away (a
// destruction, a delete, a trim committed through another node) and
// zeroes their unwrapped material after grace, when requests that picked
// them up before have ended (at once when grace is 0). Without it, a node that serves no request
// for a destroyed key would keep its material in memory until it seals.
// Every node calls it periodically.
func (e *Engine) SweepCache(grace time.Duration) int {
	return e.cache.Sweep(func(name string) (uint64, error) {
		return e.store.Revision(fsm.RecordTransitKey + name)
	}, func(l *loaded) {
		if grace <= 0 {
			l.zero()
		} else {
			time.AfterFunc(grace, l.zero)
		}
	})
}
