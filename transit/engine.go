package transit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/keys"
	"github.com/keyraft/keyraft/store"
)

// Response is an operation's result. Status 0 means 200, or 204 when Data
// is nil.
type Response struct {
	Status   int
	Data     map[string]any
	Warnings []string
}

// Engine is the transit secrets engine: named keys with versions, and the
// operations that use them. Keys are read from the node's local state and
// kept unwrapped in memory (keyed by record revision) until the node
// seals; changes commit through Raft with the revision they were made from.
type Engine struct {
	store store.Store
	log   hclog.Logger
	// Now is the clock for creation times and auto-rotation.
	Now func() time.Time
	// Backends are the node's crypto backends; nil serves every key in
	// this process.
	Backends CryptoBackends
	// UnsafeMinPendingWindow, when set, replaces the 1 h minimum of a
	// destruction's pending window. Tests only: see lifecycle.go.
	UnsafeMinPendingWindow time.Duration
	// usage holds this node's encryption counts not yet committed.
	usage usageCounts
	// wrap is the cluster's wrapping key for imports (import_wrapping.go).
	wrap wrappingCache

	// cache holds the keys in use by name, at most maxCachedKeys: a node
	// holding many keys keeps in memory (unwrapped) only those in use. Its
	// Purge zeroes them, and a key read while the node sealed is not kept.
	cache store.Cache[*loaded]
}

// loaded is a policy at one revision with its crypto ready for use
// (crypto.go). It is immutable once built.
type loaded struct {
	rev    uint64
	policy *Policy
	crypto KeyCrypto
}

func (l *loaded) zero() {
	l.crypto.zero()
	l.policy.zero()
}

// New returns an engine over s. Call Purge when the node seals.
func New(s store.Store, logger hclog.Logger) *Engine {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	e := &Engine{store: s, log: logger, Now: time.Now}
	e.cache.Max, e.cache.Zero = maxCachedKeys, (*loaded).zero
	e.wrap.key.Zero = (*parsedWrappingKey).zero
	return e
}

// maxCachedKeys is how many keys an engine keeps ready (parsed, with
// their versions' handles); others are read and unwrapped again at their
// next use.
const maxCachedKeys = 4096

// Purge zeroes and drops every cached key.
func (e *Engine) Purge() {
	e.wrap.purge()
	e.cache.Purge()
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func checkName(name string) error {
	if !validName.MatchString(name) {
		return badRequest("invalid key name %q: use 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit", Truncate(name))
	}
	return nil
}

// get returns the key as of the local state, or nil when it does not exist.
// A cached key is used while its record keeps its revision; reading the
// revision copies the whole record out of storage, so it is skipped when
// no Raft entry was applied since the last check (store.Cache).
func (e *Engine) get(name string) (*loaded, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return e.cache.Get(name, store.AppliedIndex(e.store),
		func() (uint64, error) { return e.store.Revision(fsm.RecordTransitKey + name) },
		func(uint64) (*loaded, uint64, error) { return e.load(name) })
}

// load reads and parses a key (nil and revision 0 when it is gone).
func (e *Engine) load(name string) (*loaded, uint64, error) {
	raw, rev, err := e.store.Read(fsm.RecordTransitKey + name)
	if err != nil || raw == nil {
		return nil, 0, err
	}
	defer clear(raw)
	p, err := unmarshalPolicy(raw)
	if err != nil {
		return nil, 0, err
	}
	c, err := e.openCrypto(p)
	if err != nil {
		p.zero()
		return nil, 0, err
	}
	l := &loaded{rev: rev, policy: p, crypto: c}
	return l, rev, nil
}

// mustGet is get for operations on an existing key; what names the key in
// the error ("encryption key", "signing key").
func (e *Engine) mustGet(name, what string) (*loaded, error) {
	l, err := e.get(name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, badRequest("%s not found", what)
	}
	return l, nil
}

// update runs a read-modify-write of the key until it commits without a
// conflict. change gets a private copy (nil when the key does not exist)
// and returns the new policy, or nil to delete it.
func (e *Engine) update(ctx context.Context, name string, change func(p *Policy) (*Policy, error)) (*Policy, error) {
	return e.updateWith(ctx, name, change, nil)
}

// updateWith is update with more writes in the same commit.
func (e *Engine) updateWith(ctx context.Context, name string, change func(p *Policy) (*Policy, error), extra []store.Write) (*Policy, error) {
	return e.updateTxn(ctx, name, func(p *Policy) (*Policy, []store.Write, error) {
		next, err := change(p)
		return next, extra, err
	})
}

// updateTxn is update whose change also returns more writes for the
// same commit, decided on the very record the commit is conditioned on
// (a decision made on an earlier read could be stale by the commit).
func (e *Engine) updateTxn(ctx context.Context, name string, change func(p *Policy) (*Policy, []store.Write, error)) (*Policy, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		l, err := e.get(name)
		if err != nil {
			return nil, err
		}
		var cur *Policy
		var rev uint64
		if l != nil {
			cur, rev = l.policy.clone(), l.rev
		}
		next, extra, err := change(cur)
		if err != nil {
			e.abandonGenerated(cur, next)
			return nil, err
		}
		txn := &store.Txn{Expect: []fsm.Cond{{Key: fsm.RecordTransitKey + name, Revision: rev}}}
		if next == nil {
			txn.Writes = []store.Write{{Key: fsm.RecordTransitKey + name, Delete: true}}
		} else {
			b, err := next.marshal()
			if err != nil {
				return nil, err
			}
			txn.Writes = []store.Write{{Key: fsm.RecordTransitKey + name, Value: b}}
			defer clear(b)
		}
		txn.Writes = append(txn.Writes, extra...)
		_, err = e.store.Commit(ctx, txn)
		if errors.Is(err, store.ErrConflict) {
			// Certainly not applied: versions made on a backend for this
			// attempt are orphans. (After other errors the entry may
			// still commit, so they are kept.)
			e.abandonGenerated(cur, next)
			if attempt < 10 {
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
}

// newPolicy builds a key with version 1 from create parameters.
func (e *Engine) newPolicy(name string, in *Fields, defType keys.Type) (*Policy, error) {
	p, err := policyParams(name, in, defType)
	if err != nil {
		return nil, err
	}
	if p.Backend, err = e.chooseBackend(context.Background(), p, backendParam(in)); err != nil {
		return nil, err
	}
	return p, e.generateFirst(p)
}

// backendParam is the create request's backend ("" when not given).
func backendParam(in *Fields) string {
	s, _ := in.String("backend", "")
	return s
}

// generateFirst makes version 1 of a new key.
func (e *Engine) generateFirst(p *Policy) error {
	p.Versions = map[int]*keys.Version{}
	return userError(e.cryptoOf(p).generate(context.Background(), e, p, 1))
}

// minHMACKeySize and maxHMACKeySize bound key_size of an hmac key (bytes), as package keys does.
const minHMACKeySize, maxHMACKeySize = 16, 512

// policyParams validates create parameters and returns the key they
// describe, without key material.
func policyParams(name string, in *Fields, defType keys.Type) (*Policy, error) {
	typeName, err := in.String("type", string(defType))
	if err != nil {
		return nil, err
	}
	t, err := keys.ParseType(typeName)
	if err != nil {
		return nil, userError(err)
	}
	p := &Policy{Name: name, Type: t, MinDecryptionVersion: 1, MinAvailableVersion: 0, LatestVersion: 1}
	if p.Derived, err = in.Bool("derived", false); err != nil {
		return nil, err
	}
	if p.Convergent, err = in.Bool("convergent_encryption", false); err != nil {
		return nil, err
	}
	if p.Exportable, err = in.Bool("exportable", false); err != nil {
		return nil, err
	}
	if p.AllowPlaintextBackup, err = in.Bool("allow_plaintext_backup", false); err != nil {
		return nil, err
	}
	if p.AutoRotatePeriod, err = rotatePeriod(in); err != nil {
		return nil, err
	}
	if p.KeySize, err = in.Int("key_size", 0); err != nil {
		return nil, err
	}
	switch {
	case p.Derived && !t.SupportsDerivation():
		return nil, badRequest("key derivation is not supported for key type %s", t)
	case p.Convergent && !p.Derived:
		return nil, badRequest("convergent encryption requires derivation to be enabled")
	case p.Convergent && !t.IsAEAD():
		return nil, badRequest("convergent encryption is not supported for key type %s", t)
	case p.KeySize != 0 && t != keys.HMAC:
		return nil, badRequest("key_size is only valid for hmac keys")
	}
	if t == keys.HMAC && p.KeySize == 0 {
		p.KeySize = 32
	}
	if t == keys.HMAC && (p.KeySize < minHMACKeySize || p.KeySize > maxHMACKeySize) {
		return nil, badRequest("invalid key_size %d: must be between %d and %d bytes", p.KeySize, minHMACKeySize, maxHMACKeySize)
	}
	return p, nil
}

func rotatePeriod(in *Fields) (time.Duration, error) {
	d, _, err := in.Duration("auto_rotate_period")
	if err != nil {
		return 0, err
	}
	if d != 0 && d < time.Hour {
		return 0, badRequest("auto_rotate_period must be 0 to disable, or at least an hour")
	}
	return d, nil
}

// rotate adds a version to p.
func (e *Engine) rotate(p *Policy) error {
	n := p.LatestVersion + 1
	if err := e.cryptoOf(p).generate(context.Background(), e, p, n); err != nil {
		return err
	}
	p.LatestVersion = n
	return nil
}

// rotateFor rotates p and records why in its history.
func (e *Engine) rotateFor(ctx context.Context, p *Policy, why string) error {
	if err := p.checkRotation(why != ""); err != nil {
		return err
	}
	if err := e.rotate(p); err != nil {
		return err
	}
	p.record(ctx, e.Now(), EventRotate, p.LatestVersion, why)
	return nil
}

// RotateDue rotates every key whose auto_rotate_period has passed since
// its newest version. The server calls it periodically on the leader.
func (e *Engine) RotateDue(ctx context.Context) (int, error) {
	names, err := e.store.List(fsm.RecordTransitKey)
	if err != nil {
		return 0, err
	}
	rotated := 0
	for _, name := range names {
		l, err := e.get(name)
		if err != nil || l == nil {
			continue
		}
		p := l.policy
		if p.AutoRotatePeriod == 0 || e.Now().Before(p.lastRotation().Add(p.AutoRotatePeriod)) || p.state(e.Now()) != StateActive {
			continue
		}
		// The rotation is an internal event of its own, committed with it.
		ev := &audit.Event{Operation: "transit/auto-rotate", Key: name, Identity: "keyraft", Outcome: audit.Allowed}
		_, err = e.update(audit.WithEvent(ctx, ev), name, func(p *Policy) (*Policy, error) {
			if p == nil || p.AutoRotatePeriod == 0 || e.Now().Before(p.lastRotation().Add(p.AutoRotatePeriod)) || p.state(e.Now()) != StateActive {
				return nil, errNothingToDo
			}
			return p, e.rotateFor(ctx, p, "auto_rotate_period")
		})
		if errors.Is(err, errNothingToDo) {
			continue
		}
		if err != nil {
			return rotated, fmt.Errorf("transit: auto-rotating %q: %w", name, err)
		}
		e.log.Info("auto-rotated key", "key", name)
		rotated++
	}
	return rotated, nil
}

var errNothingToDo = errors.New("nothing to do")

func ok(data map[string]any) *Response { return &Response{Status: http.StatusOK, Data: data} }
