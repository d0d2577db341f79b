package pkcs11

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	cryptoki "github.com/miekg/pkcs11"
)

// Token is an open, logged-in token with a pool of sessions. It is safe
// for concurrent use; each borrowed Session belongs to one goroutine
// until it is returned.
type Token struct {
	// Ctx is the module, shared by every Token of the process on it.
	Ctx *cryptoki.Ctx
	// Slot holds the token; Label is its CK_TOKEN_INFO.label.
	Slot  uint
	Label string
	// Path is the module's resolved path.
	Path string

	d    *Dialect
	mod  *module
	pin  *string // for re-login; a pointer so that no fmt verb prints it
	pool *pool

	closeOnce sync.Once
	closeErr  error
}

// Open validates cfg, reads the PIN file when PIN is empty, loads the
// module (or shares it), finds the token, logs in (once per token per
// process; a second Token on a logged-in token must bring the same PIN)
// and returns the Token with one session open. Sessions are read/write
// when rw is set. Errors wrap ErrConfig, ErrModule, ErrToken or ErrPIN
// and never hold the PIN.
func Open(cfg Config, rw bool) (*Token, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PIN == "" {
		if err := cfg.ReadPIN(); err != nil {
			return nil, err
		}
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	d := cfg.dialect()
	mod, err := acquireModule(d, cfg.Lib)
	if err != nil {
		return nil, err
	}
	pin := cfg.PIN
	t := &Token{Ctx: mod.ctx, Path: mod.path, d: d, mod: mod, pin: &pin}
	fail := func(err error) (*Token, error) {
		pin = ""
		_ = mod.release(d)
		return nil, err
	}
	slot, info, err := findToken(d, mod.ctx, cfg)
	if err != nil {
		return fail(err)
	}
	t.Slot, t.Label = slot, info.Label
	if info.Flags&cryptoki.CKF_USER_PIN_LOCKED != 0 {
		return fail(fmt.Errorf("%s: %w: the user PIN of token %q is locked; the security officer must reset it", d.Name, ErrPIN, t.Label))
	}
	flags := uint(cryptoki.CKF_SERIAL_SESSION)
	if rw {
		flags |= cryptoki.CKF_RW_SESSION
	}
	sh, err := mod.ctx.OpenSession(slot, flags)
	if err != nil {
		return fail(fmt.Errorf("%s: C_OpenSession on token %q: %w", d.Name, t.Label, err))
	}
	if err := mod.acquireLogin(d, slot, t.Label, sh, pin); err != nil {
		_ = mod.ctx.CloseSession(sh)
		return fail(err)
	}
	t.pool = newPool(t, flags, cfg.MaxSessions, sh)
	return t, nil
}

// findToken returns the slot holding the configured, initialized token.
func findToken(d *Dialect, ctx *cryptoki.Ctx, cfg Config) (uint, cryptoki.TokenInfo, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, cryptoki.TokenInfo{}, fmt.Errorf("%s: %w: C_GetSlotList: %w", d.Name, ErrToken, err)
	}
	if cfg.Slot != nil {
		if !slices.Contains(slots, *cfg.Slot) {
			return 0, cryptoki.TokenInfo{}, fmt.Errorf("%s: %w: slot %d has no token (slots with a token: %v)", d.Name, ErrToken, *cfg.Slot, slots)
		}
		tok, err := ctx.GetTokenInfo(*cfg.Slot)
		if err != nil {
			return 0, tok, fmt.Errorf("%s: %w: C_GetTokenInfo(slot %d): %w", d.Name, ErrToken, *cfg.Slot, err)
		}
		if tok.Flags&cryptoki.CKF_TOKEN_INITIALIZED == 0 {
			return 0, tok, fmt.Errorf("%s: %w: the token in slot %d is not initialized", d.Name, ErrToken, *cfg.Slot)
		}
		return *cfg.Slot, tok, nil
	}
	var (
		match  []uint
		info   cryptoki.TokenInfo
		labels []string
	)
	for _, id := range slots {
		tok, err := ctx.GetTokenInfo(id)
		if err != nil || tok.Flags&cryptoki.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		labels = append(labels, strconv.Quote(tok.Label))
		if tok.Label == cfg.TokenLabel {
			match = append(match, id)
			info = tok
		}
	}
	switch len(match) {
	case 0:
		return 0, info, fmt.Errorf("%s: %w: no initialized token labelled %q (tokens: %s)", d.Name, ErrToken, cfg.TokenLabel, strings.Join(labels, ", "))
	case 1:
		return match[0], info, nil
	}
	return 0, info, fmt.Errorf("%s: %w: %d tokens are labelled %q (slots %v); configure %s instead", d.Name, ErrToken, len(match), cfg.TokenLabel, match, d.Slot)
}

// relogin logs the user in on a fresh session whose token forgot the
// login (every session of the process had been closed).
func (t *Token) relogin(sh cryptoki.SessionHandle) error {
	err := t.Ctx.Login(sh, cryptoki.CKU_USER, *t.pin)
	if err != nil && !IsCode(err, cryptoki.CKR_USER_ALREADY_LOGGED_IN) {
		return fmt.Errorf("re-login: %w", loginError(t.d, t.Label, err))
	}
	return nil
}

// Close stops lending sessions, waits until every borrowed one is back,
// logs out (when no other Token of the process uses the login), closes
// the sessions and releases the module (finalizing it with the last
// Token). Later calls return the first call's result.
func (t *Token) Close() error {
	t.closeOnce.Do(func() {
		slots := t.pool.close()
		var (
			errs   []error
			logout cryptoki.SessionHandle
			have   bool
		)
		for _, s := range slots {
			if s.open {
				logout, have = s.H, true
				break
			}
		}
		errs = append(errs, t.mod.releaseLogin(t.d, t.Slot, logout, have))
		for _, s := range slots {
			if !s.open {
				continue
			}
			if err := t.Ctx.CloseSession(s.H); err != nil && !SessionLost(err) {
				errs = append(errs, fmt.Errorf("%s: C_CloseSession: %w", t.d.Name, err))
			}
			s.open = false
		}
		errs = append(errs, t.mod.release(t.d))
		t.closeErr = errors.Join(errs...)
		*t.pin = ""
	})
	return t.closeErr
}
