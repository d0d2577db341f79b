package transit

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keyraft/keyraft/audit"
)

// The key lifecycle follows NIST SP 800-57 and KMIP: a key is made
// pre-active or active, may be disabled and enabled again, may be marked
// compromised (from then on it only decrypts and verifies), and ends
// pending destruction and then destroyed. Every rule about what a state
// allows lives in Decide; the handlers only ask it.

// State is a key's lifecycle state.
type State string

// Lifecycle states.
const (
	// StatePreActive keys exist but may not be used until their
	// activation time (or an enable).
	StatePreActive State = "pre-active"
	// StateActive keys are used normally.
	StateActive State = "active"
	// StateDisabled keys refuse every use until enabled again.
	StateDisabled State = "disabled"
	// StateCompromised keys only decrypt and verify, flagged in every
	// answer, so data can be moved to a new key. There is no way back.
	StateCompromised State = "compromised"
	// StatePendingDestruction keys refuse every use until destroy_time,
	// when the leader destroys them; cancel-destroy brings them back
	// disabled (or compromised).
	StatePendingDestruction State = "pending-destruction"
	// StateDestroyed keys keep their metadata and history; their material
	// is gone from the cluster.
	StateDestroyed State = "destroyed"
)

// States lists every state in lifecycle order (the columns of the table
// in docs/lifecycle.md).
var States = []State{StatePreActive, StateActive, StateDisabled, StateCompromised, StatePendingDestruction, StateDestroyed}

// Op is a class of operation on a key, as Decide sees it.
type Op string

// Operations on a key (the rows of the table in docs/lifecycle.md).
const (
	OpRead          Op = "read"           // GET transit/keys/:name
	OpEncrypt       Op = "encrypt"        // encrypt, datakey
	OpDecrypt       Op = "decrypt"        // decrypt
	OpRewrap        Op = "rewrap"         // rewrap (decrypt, then encrypt)
	OpSign          Op = "sign"           // sign
	OpVerify        Op = "verify"         // verify (signatures and hmacs)
	OpHMAC          Op = "hmac"           // hmac
	OpRotate        Op = "rotate"         // rotate (manual or automatic)
	OpConfig        Op = "config"         // config
	OpTrim          Op = "trim"           // trim
	OpExport        Op = "export"         // export, backup
	OpDelete        Op = "delete"         // DELETE transit/keys/:name, restore over it
	OpDisable       Op = "disable"        // disable
	OpEnable        Op = "enable"         // enable
	OpCompromise    Op = "compromise"     // compromise
	OpDestroy       Op = "destroy"        // schedule destruction
	OpCancelDestroy Op = "cancel-destroy" // cancel a scheduled destruction
)

// Ops lists every operation class in the order of the docs table.
var Ops = []Op{OpRead, OpEncrypt, OpDecrypt, OpRewrap, OpSign, OpVerify, OpHMAC, OpRotate, OpConfig,
	OpTrim, OpExport, OpDelete, OpDisable, OpEnable, OpCompromise, OpDestroy, OpCancelDestroy}

// allowedIn is the state × operation table: the states in which each
// operation is allowed. Decide is its only reader.
var allowedIn = map[Op][]State{
	OpRead:          States,
	OpEncrypt:       {StateActive},
	OpDecrypt:       {StateActive, StateCompromised},
	OpRewrap:        {StateActive},
	OpSign:          {StateActive},
	OpVerify:        {StateActive, StateCompromised},
	OpHMAC:          {StateActive},
	OpRotate:        {StatePreActive, StateActive},
	OpConfig:        {StatePreActive, StateActive, StateDisabled, StateCompromised},
	OpTrim:          {StatePreActive, StateActive, StateDisabled, StateCompromised},
	OpExport:        {StatePreActive, StateActive, StateDisabled},
	OpDelete:        {StatePreActive, StateActive, StateDisabled, StateCompromised, StateDestroyed},
	OpDisable:       {StatePreActive, StateActive, StateDisabled},
	OpEnable:        {StatePreActive, StateActive, StateDisabled},
	OpCompromise:    States,
	OpDestroy:       {StatePreActive, StateActive, StateDisabled, StateCompromised},
	OpCancelDestroy: {StatePendingDestruction},
}

// Decide reports whether op is allowed on a key in state s. It is the one
// place that decides; an unknown state or operation is refused.
func Decide(s State, op Op) bool {
	for _, a := range allowedIn[op] {
		if a == s {
			return true
		}
	}
	return false
}

// hints tell the caller how to leave a state that refused an operation.
var hints = map[State]string{
	StatePreActive:          "it becomes active at its activation_time, or at once with: keyraft keys enable %s",
	StateDisabled:           "enable it with: keyraft keys enable %s",
	StateCompromised:        "a compromised key only decrypts and verifies; move the data to a new key",
	StatePendingDestruction: "cancel the destruction with: keyraft keys cancel-destroy %s",
	StateDestroyed:          "its material is gone for good",
}

// stateError is the 400 a refused operation gets: the state, the
// operation and the way out.
func stateError(name string, s State, op Op) error {
	msg := fmt.Sprintf("key %q is %s: %s is not allowed", name, s, op)
	if h, ok := hints[s]; ok {
		if s == StatePreActive || s == StateDisabled || s == StatePendingDestruction {
			h = fmt.Sprintf(h, name)
		}
		msg += " (" + h + ")"
	}
	return &Error{Status: http.StatusBadRequest, Msg: msg}
}

// Lifecycle is the lifecycle part of a key record. A record without one
// (made before lifecycles existed) is an active key with no history.
// Every time in it was stamped by the node that proposed the change.
type Lifecycle struct {
	State State `json:"state"`
	// Compromised stays set once the key was reported compromised, also
	// while pending destruction and after destruction.
	Compromised      bool      `json:"compromised,omitempty"`
	StateChangedTime time.Time `json:"state_changed_time"`
	// ActivationTime is when a pre-active key becomes active.
	ActivationTime time.Time `json:"activation_time,omitzero"`
	// DestroyTime is when destruction completes (pending) or completed.
	DestroyTime time.Time `json:"destroy_time,omitzero"`
	// AutoRotateShare is the share of a version's safe encryption count
	// (2^32 with random 96-bit nonces) at which the leader rotates the
	// key; 0 means DefaultAutoRotateShare.
	AutoRotateShare float64        `json:"auto_rotate_share,omitempty"`
	History         []HistoryEntry `json:"history,omitempty"`
}

// HistoryEntry is one lifecycle event of a key.
type HistoryEntry struct {
	Time  time.Time `json:"time"`
	Event string    `json:"event"`
	// Version is the version a rotation made.
	Version int `json:"version,omitempty"`
	// Identity is who asked (a token accessor, "keyraft" for the leader's
	// own work).
	Identity string `json:"identity,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// History event names.
const (
	EventCreate          = "create"
	EventActivate        = "activate"
	EventSetActivation   = "set-activation-time"
	EventRotate          = "rotate"
	EventDisable         = "disable"
	EventEnable          = "enable"
	EventCompromise      = "compromise"
	EventScheduleDestroy = "schedule-destroy"
	EventCancelDestroy   = "cancel-destroy"
	EventDestroy         = "destroy"
)

// maxHistory bounds a key's history (a key rotated hourly for years);
// the oldest entries after the first go.
const maxHistory = 512

func (lc *Lifecycle) clone() *Lifecycle {
	if lc == nil {
		return nil
	}
	c := *lc
	c.History = append([]HistoryEntry(nil), lc.History...)
	return &c
}

// lifecycle returns the key's lifecycle, creating the implicit "active"
// one of an old record.
func (p *Policy) lifecycle() *Lifecycle {
	if p.Lifecycle == nil {
		p.Lifecycle = &Lifecycle{State: StateActive}
	}
	return p.Lifecycle
}

// state is the key's effective state at now: a pre-active key whose
// activation time has come is active even before the leader records it,
// and a key whose destroy_time has come is destroyed (every use refused,
// no way back) even before the leader removes its material, so the
// pending window ends when it says, whatever the leader's pace.
func (p *Policy) state(now time.Time) State {
	lc := p.Lifecycle
	if lc == nil || lc.State == "" {
		return StateActive
	}
	if lc.State == StatePreActive && !lc.ActivationTime.IsZero() && !now.Before(lc.ActivationTime) {
		return StateActive
	}
	if p.due(now) {
		return StateDestroyed
	}
	return lc.State
}

// due reports whether the key is pending destruction and its
// destroy_time has come: the leader's next pass destroys it.
func (p *Policy) due(now time.Time) bool {
	lc := p.Lifecycle
	return lc != nil && lc.State == StatePendingDestruction && !now.Before(lc.DestroyTime)
}

// record appends a history entry, with the identity of the request in
// ctx when there is one.
func (p *Policy) record(ctx context.Context, now time.Time, event string, version int, detail string) {
	lc := p.lifecycle()
	h := HistoryEntry{Time: now.UTC(), Event: event, Version: version, Detail: detail}
	if ev := audit.EventFrom(ctx); ev != nil {
		h.Identity = ev.Identity
	}
	lc.History = append(lc.History, h)
	if len(lc.History) > maxHistory {
		lc.History = append(lc.History[:1], lc.History[len(lc.History)-maxHistory+1:]...)
	}
}

// setState moves the key to s and records event.
func (p *Policy) setState(ctx context.Context, now time.Time, s State, event, detail string) {
	lc := p.lifecycle()
	lc.State = s
	lc.StateChangedTime = now.UTC()
	p.record(ctx, now, event, 0, detail)
}

// allow checks op against the key's state at the engine's clock. A
// compromised key's answer is flagged: the audit event of the request
// says so, and flag adds the warning and field to the response.
func (e *Engine) allow(ctx context.Context, p *Policy, op Op) error {
	s := p.state(e.Now())
	if !Decide(s, op) {
		return stateError(p.Name, s, op)
	}
	if p.Lifecycle != nil && p.Lifecycle.Compromised {
		if ev := audit.EventFrom(ctx); ev != nil {
			if ev.Details == nil {
				ev.Details = map[string]string{}
			}
			ev.Details["key_compromised"] = "true"
		}
	}
	return nil
}

// compromisedWarning is the warning every answer about a compromised key
// carries.
func compromisedWarning(name string) string {
	return fmt.Sprintf("key %q is compromised: use it only to decrypt or verify existing data, and move that data to a new key", name)
}

// flag marks a response about a compromised key: a warning and
// "key_compromised": true.
func flag(p *Policy, resp *Response) *Response {
	if resp == nil || p == nil || p.Lifecycle == nil || !p.Lifecycle.Compromised {
		return resp
	}
	if resp.Data != nil {
		resp.Data["key_compromised"] = true
	}
	resp.Warnings = append(resp.Warnings, compromisedWarning(p.Name))
	return resp
}

// lifecycleInfo adds the lifecycle fields to a key read.
func (p *Policy) lifecycleInfo(d map[string]any, now time.Time) {
	lc := p.Lifecycle
	if lc == nil {
		lc = &Lifecycle{State: StateActive}
	}
	d["state"] = string(p.state(now))
	d["compromised"] = lc.Compromised
	d["state_changed_time"] = timeOrNil(lc.StateChangedTime)
	d["activation_time"] = timeOrNil(lc.ActivationTime)
	d["destroy_time"] = timeOrNil(lc.DestroyTime)
	d["auto_rotate_share"] = lc.rotateShare()
	hist := make([]map[string]any, 0, len(lc.History))
	for _, h := range lc.History {
		m := map[string]any{"time": h.Time.UTC().Format(time.RFC3339Nano), "event": h.Event}
		if h.Version != 0 {
			m["version"] = h.Version
		}
		if h.Identity != "" {
			m["identity"] = h.Identity
		}
		if h.Detail != "" {
			m["detail"] = h.Detail
		}
		hist = append(hist, m)
	}
	d["history"] = hist
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Pending-destruction windows: AWS KMS's range (7 to 30 days, default
// 30) widened down to an hour for operators who rotate fast.
const (
	DefaultPendingWindow = 7 * 24 * time.Hour
	MinPendingWindow     = time.Hour
	MaxPendingWindow     = 30 * 24 * time.Hour
)

// minPendingWindow is the smallest window the engine accepts.
func (e *Engine) minPendingWindow() time.Duration {
	if e.UnsafeMinPendingWindow > 0 {
		return e.UnsafeMinPendingWindow
	}
	return MinPendingWindow
}

// activationTime reads an activation_time parameter (RFC 3339).
func activationTime(in *Fields) (time.Time, bool, error) {
	if in == nil || !in.Has("activation_time") {
		return time.Time{}, false, nil
	}
	s, err := in.String("activation_time", "")
	if err != nil {
		return time.Time{}, false, err
	}
	if s == "" {
		return time.Time{}, true, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false, badRequest("activation_time must be an RFC 3339 time such as \"2030-01-02T15:04:05Z\", got %q", Truncate(s))
	}
	return t.UTC(), true, nil
}

// startLifecycle sets the lifecycle of a key being created: pre-active
// when in asks for a future activation_time, active otherwise.
func (e *Engine) startLifecycle(ctx context.Context, p *Policy, in *Fields) error {
	now := e.Now().UTC()
	at, set, err := activationTime(in)
	if err != nil {
		return err
	}
	p.Lifecycle = &Lifecycle{State: StateActive, StateChangedTime: now}
	if in != nil && in.Has("auto_rotate_share") {
		if p.Lifecycle.AutoRotateShare, err = rotateShare(in); err != nil {
			return err
		}
	}
	detail := ""
	if set && at.After(now) {
		p.Lifecycle.State, p.Lifecycle.ActivationTime = StatePreActive, at
		detail = "activation_time " + at.Format(time.RFC3339)
	}
	p.record(ctx, now, EventCreate, 1, detail)
	return nil
}

// changeState runs one lifecycle transition as a read-modify-write:
// check op against the state, then apply.
func (e *Engine) changeState(ctx context.Context, name string, op Op, apply func(p *Policy, now time.Time) error) (*Response, error) {
	_, err := e.update(ctx, name, func(p *Policy) (*Policy, error) {
		if p == nil {
			return nil, notFound("key %q not found", name)
		}
		now := e.Now().UTC()
		if op == OpCancelDestroy && p.due(now) {
			return nil, badRequest("key %q is due for destruction since %s: it is too late to cancel-destroy", name, p.Lifecycle.DestroyTime.UTC().Format(time.RFC3339))
		}
		if !Decide(p.state(now), op) {
			return nil, stateError(name, p.state(now), op)
		}
		if err := apply(p, now); err != nil {
			return nil, err
		}
		return p, nil
	})
	if err == errNothingToDo {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return e.ReadKey(name)
}

// DisableKey handles POST transit/keys/:name/disable: every use is
// refused until EnableKey. Disabling a disabled key changes nothing.
func (e *Engine) DisableKey(ctx context.Context, name string) (*Response, error) {
	return e.changeState(ctx, name, OpDisable, func(p *Policy, now time.Time) error {
		if p.state(now) == StateDisabled {
			return errNothingToDo
		}
		p.setState(ctx, now, StateDisabled, EventDisable, "")
		return nil
	})
}

// EnableKey handles POST transit/keys/:name/enable: a disabled key
// becomes active again, and a pre-active key is activated now.
func (e *Engine) EnableKey(ctx context.Context, name string) (*Response, error) {
	return e.changeState(ctx, name, OpEnable, func(p *Policy, now time.Time) error {
		switch {
		case p.state(now) == StateActive && p.lifecycle().State == StateActive:
			return errNothingToDo
		case p.lifecycle().State == StatePreActive:
			p.lifecycle().ActivationTime = now
			p.setState(ctx, now, StateActive, EventActivate, "")
		default:
			p.setState(ctx, now, StateActive, EventEnable, "")
		}
		return nil
	})
}

// CompromiseKey handles POST transit/keys/:name/compromise: the key is
// marked compromised for good. A key pending destruction stays pending
// (and comes back compromised if the destruction is cancelled); a
// destroyed key keeps its state and gets the mark.
func (e *Engine) CompromiseKey(ctx context.Context, name string, in *Fields) (*Response, error) {
	reason, err := in.String("reason", "")
	if err != nil {
		return nil, err
	}
	if len(reason) > 1024 {
		return nil, badRequest("reason is limited to 1024 bytes")
	}
	return e.changeState(ctx, name, OpCompromise, func(p *Policy, now time.Time) error {
		lc := p.lifecycle()
		if lc.Compromised {
			return errNothingToDo
		}
		lc.Compromised = true
		switch p.state(now) {
		case StatePendingDestruction, StateDestroyed:
			p.record(ctx, now, EventCompromise, 0, reason)
		default:
			p.setState(ctx, now, StateCompromised, EventCompromise, reason)
		}
		return nil
	})
}

// DestroyKey handles POST transit/keys/:name/destroy {pending_window}:
// the key refuses every use from now on and the leader destroys it when
// the window has passed. Like delete, it needs deletion_allowed.
func (e *Engine) DestroyKey(ctx context.Context, name string, in *Fields) (*Response, error) {
	window, set, err := in.Duration("pending_window")
	if err != nil {
		return nil, err
	}
	if !set || window == 0 {
		window = DefaultPendingWindow
	}
	if window < e.minPendingWindow() || window > MaxPendingWindow {
		return nil, badRequest("pending_window must be between %s and %s (720h), got %s", e.minPendingWindow(), MaxPendingWindow, window)
	}
	return e.changeState(ctx, name, OpDestroy, func(p *Policy, now time.Time) error {
		if !p.DeletionAllowed {
			return badRequest("destruction is not allowed for this key: set deletion_allowed first (keyraft keys config -deletion-allowed=true %s)", name)
		}
		p.lifecycle().DestroyTime = now.Add(window)
		detail := "destroy_time " + now.Add(window).Format(time.RFC3339)
		if window < MinPendingWindow {
			// Only a test server takes it (UnsafeMinPendingWindow); the key's
			// history and the audit log say so for good.
			detail += fmt.Sprintf("; UNSAFE: pending window %s below the %s minimum (a test setting)", window, MinPendingWindow)
			if ev := audit.EventFrom(ctx); ev != nil {
				if ev.Details == nil {
					ev.Details = map[string]string{}
				}
				ev.Details["unsafe_pending_window"] = window.String()
			}
		}
		p.setState(ctx, now, StatePendingDestruction, EventScheduleDestroy, detail)
		return nil
	})
}

// CancelDestroyKey handles POST transit/keys/:name/cancel-destroy: the
// key comes back disabled (as AWS KMS does), or compromised when it was.
func (e *Engine) CancelDestroyKey(ctx context.Context, name string) (*Response, error) {
	return e.changeState(ctx, name, OpCancelDestroy, func(p *Policy, now time.Time) error {
		lc := p.lifecycle()
		lc.DestroyTime = time.Time{}
		next := StateDisabled
		if lc.Compromised {
			next = StateCompromised
		}
		p.setState(ctx, now, next, EventCancelDestroy, "")
		return nil
	})
}

// destroyed reports whether the key's material is gone.
func (p *Policy) destroyed() bool {
	return p.Lifecycle != nil && p.Lifecycle.State == StateDestroyed
}

// destroyMaterial removes every version's material from p, keeping the
// version numbers and creation times (and, for a key on a crypto backend,
// the handles, which name objects the backend destroys: see dueChange).
func (p *Policy) destroyMaterial() {
	for _, v := range p.Versions {
		v.Zero()
		v.Secret, v.HMACKey = nil, nil
	}
	for _, k := range p.BackendKeys {
		clear(k.Material)
		k.Material = nil
	}
}

// validate checks a lifecycle that comes from outside (a backup).
func (lc *Lifecycle) validate() error {
	if lc == nil {
		return nil
	}
	known := false
	for _, s := range States {
		known = known || s == lc.State
	}
	switch {
	case !known:
		return fmt.Errorf("unknown lifecycle state %q", Truncate(string(lc.State)))
	case lc.State == StatePendingDestruction || lc.State == StateDestroyed:
		return fmt.Errorf("a key %s cannot be restored", lc.State)
	case lc.AutoRotateShare < 0 || lc.AutoRotateShare > 1:
		return fmt.Errorf("auto_rotate_share out of range")
	case len(lc.History) > maxHistory:
		return fmt.Errorf("history longer than %d entries", maxHistory)
	}
	return nil
}

// configLifecycle applies the lifecycle settings of a config request:
// activation_time (only while the key is pre-active: an active key has
// been usable already) and auto_rotate_share.
func (e *Engine) configLifecycle(ctx context.Context, p *Policy, in *Fields) error {
	now := e.Now().UTC()
	at, set, err := activationTime(in)
	if err != nil {
		return err
	}
	if set {
		if p.state(now) != StatePreActive {
			return badRequest("activation_time can only change while the key is pre-active; it is %s", p.state(now))
		}
		if !at.After(now) {
			at = now
		}
		lc := p.lifecycle()
		lc.ActivationTime = at
		p.record(ctx, now, EventSetActivation, 0, at.Format(time.RFC3339))
	}
	if in.Has("auto_rotate_share") {
		share, err := rotateShare(in)
		if err != nil {
			return err
		}
		p.lifecycle().AutoRotateShare = share
	}
	return nil
}

// flagged returns a function that adds the compromised flag to an
// operation's answer: flagged(p)(e.run(...)).
func flagged(p *Policy) func(*Response, error) (*Response, error) {
	return func(resp *Response, err error) (*Response, error) {
		if err != nil {
			return resp, err
		}
		return flag(p, resp), nil
	}
}

// LifecycleActions are the actions of POST transit/keys/:name/<action>
// that ChangeState handles.
var LifecycleActions = []string{"disable", "enable", "compromise", "destroy", "cancel-destroy"}

// ChangeState handles POST transit/keys/:name/<action> for the actions
// in LifecycleActions.
func (e *Engine) ChangeState(ctx context.Context, name, action string, in *Fields) (*Response, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	switch action {
	case "disable":
		return e.DisableKey(ctx, name)
	case "enable":
		return e.EnableKey(ctx, name)
	case "compromise":
		return e.CompromiseKey(ctx, name, in)
	case "destroy":
		return e.DestroyKey(ctx, name, in)
	case "cancel-destroy":
		return e.CancelDestroyKey(ctx, name)
	}
	return nil, notFound("unsupported lifecycle action %q", Truncate(action))
}
