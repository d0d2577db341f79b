package pkcs11

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	cryptoki "github.com/miekg/pkcs11"
)

// A PKCS#11 module is process-global state: C_Initialize may be called
// once per process, C_Finalize ends it for every user, and a token's login
// is shared by all of the process's sessions on it (a second C_Login
// answers CKR_USER_ALREADY_LOGGED_IN; one C_Logout logs every session
// out). The registry therefore counts references to modules and logins,
// so that any number of Tokens — seals and crypto backends, one after
// another or at once, on different tokens or the same one — open and
// close independently.

var (
	registryMu sync.Mutex
	modules    = map[string]*module{} // by resolved library path
	// pinMACKey keys the PIN fingerprints that check a second Token's PIN
	// against a login that already exists, so no PIN is kept for that.
	pinMACKey = func() []byte {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			panic("pkcs11: reading randomness: " + err.Error())
		}
		return k
	}()
)

type module struct {
	path   string
	ctx    *cryptoki.Ctx
	owned  bool // our C_Initialize succeeded, so C_Finalize is ours too
	refs   int
	logins map[uint]*login // by slot ID
}

type login struct {
	refs int
	pin  []byte // HMAC-SHA-256(pinMACKey, PIN), never the PIN
}

// LoadedModules is how many modules the registry holds; 0 once every
// Token is closed (tests check that failed Opens leak none).
func LoadedModules() int {
	registryMu.Lock()
	defer registryMu.Unlock()
	return len(modules)
}

func pinFingerprint(pin string) []byte {
	m := hmac.New(sha256.New, pinMACKey)
	m.Write([]byte(pin))
	return m.Sum(nil)
}

// resolveLib makes equal paths (symlinks, relative paths) share one
// registry entry. A bare file name is left for the dynamic loader.
func resolveLib(lib string) (string, error) {
	if !strings.ContainsRune(lib, os.PathSeparator) {
		return lib, nil
	}
	p, err := filepath.Abs(lib)
	if err == nil {
		p, err = filepath.EvalSymlinks(p)
	}
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return "", fmt.Errorf("%s is a directory", p)
	}
	return p, nil
}

// acquireModule loads and initializes lib, or takes another reference on
// it when it is already loaded.
func acquireModule(d *Dialect, lib string) (*module, error) {
	path, err := resolveLib(lib)
	if err != nil {
		return nil, fmt.Errorf("%s: %w %q: %v", d.Name, ErrModule, lib, err)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if m := modules[path]; m != nil {
		m.refs++
		return m, nil
	}
	ctx := cryptoki.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("%s: %w %q: dlopen failed or the library has no C_GetFunctionList", d.Name, ErrModule, lib)
	}
	owned := true
	if err := ctx.Initialize(); err != nil {
		if !IsCode(err, cryptoki.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			ctx.Destroy()
			return nil, fmt.Errorf("%s: %w %q: C_Initialize: %w", d.Name, ErrModule, lib, err)
		}
		// Another library in this process initialized the module; it
		// owns C_Finalize.
		owned = false
	}
	m := &module{path: path, ctx: ctx, owned: owned, refs: 1, logins: map[uint]*login{}}
	modules[path] = m
	return m, nil
}

// release drops a reference; the last one finalizes and unloads the module.
func (m *module) release(d *Dialect) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	if m.refs--; m.refs > 0 {
		return nil
	}
	delete(modules, m.path)
	var err error
	if m.owned {
		if e := m.ctx.Finalize(); e != nil {
			err = fmt.Errorf("%s: C_Finalize: %w", d.Name, e)
		}
	}
	m.ctx.Destroy()
	return err
}

// acquireLogin logs the user in on slot through session sh or, when this
// process is already logged in there, checks that pin is the same PIN and
// takes another reference.
func (m *module) acquireLogin(d *Dialect, slot uint, token string, sh cryptoki.SessionHandle, pin string) error {
	fp := pinFingerprint(pin)
	registryMu.Lock()
	defer registryMu.Unlock()
	if l := m.logins[slot]; l != nil {
		if !hmac.Equal(l.pin, fp) {
			return fmt.Errorf("%s: %w: token %q is already logged in by this process with a different PIN", d.Name, ErrPIN, token)
		}
		l.refs++
		return nil
	}
	if err := m.ctx.Login(sh, cryptoki.CKU_USER, pin); err != nil && !IsCode(err, cryptoki.CKR_USER_ALREADY_LOGGED_IN) {
		return loginError(d, token, err)
	}
	m.logins[slot] = &login{refs: 1, pin: fp}
	return nil
}

// releaseLogin drops a login reference; the last one logs out through sh
// when the caller still has a session (without one, the token already
// ended the login).
func (m *module) releaseLogin(d *Dialect, slot uint, sh cryptoki.SessionHandle, haveSession bool) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	l := m.logins[slot]
	if l == nil {
		return nil
	}
	if l.refs--; l.refs > 0 {
		return nil
	}
	delete(m.logins, slot)
	if !haveSession {
		return nil
	}
	if err := m.ctx.Logout(sh); err != nil && !IsCode(err, cryptoki.CKR_USER_NOT_LOGGED_IN) && !SessionLost(err) {
		return fmt.Errorf("%s: C_Logout: %w", d.Name, err)
	}
	return nil
}

// loginError classifies a C_Login failure. The PIN is never part of it.
func loginError(d *Dialect, token string, err error) error {
	switch {
	case IsCode(err, cryptoki.CKR_PIN_INCORRECT):
		return fmt.Errorf("%s: %w: token %q: incorrect PIN (%w)", d.Name, ErrPIN, token, err)
	case IsCode(err, cryptoki.CKR_PIN_LOCKED):
		return fmt.Errorf("%s: %w: token %q: the user PIN is locked; the security officer must reset it (%w)", d.Name, ErrPIN, token, err)
	case IsCode(err, cryptoki.CKR_PIN_EXPIRED), IsCode(err, cryptoki.CKR_PIN_INVALID), IsCode(err, cryptoki.CKR_PIN_LEN_RANGE):
		return fmt.Errorf("%s: %w: token %q: %w", d.Name, ErrPIN, token, err)
	}
	return fmt.Errorf("%s: C_Login on token %q: %w", d.Name, token, err)
}

// IsCode reports whether err is (or wraps) the PKCS#11 return value code.
func IsCode(err error, code uint) bool {
	var e cryptoki.Error
	return errors.As(err, &e) && uint(e) == code
}

// SessionLost reports errors after which a session is unusable: Discard
// it and run the operation again on another.
func SessionLost(err error) bool {
	return IsCode(err, cryptoki.CKR_SESSION_HANDLE_INVALID) ||
		IsCode(err, cryptoki.CKR_SESSION_CLOSED) ||
		IsCode(err, cryptoki.CKR_DEVICE_REMOVED) ||
		IsCode(err, cryptoki.CKR_TOKEN_NOT_PRESENT) ||
		IsCode(err, cryptoki.CKR_OPERATION_ACTIVE) ||
		IsCode(err, cryptoki.CKR_USER_NOT_LOGGED_IN)
}

// ObjectLost reports errors after which cached key handles must be looked
// up again (SoftHSM gives private objects new handles after a re-login).
func ObjectLost(err error) bool {
	return IsCode(err, cryptoki.CKR_KEY_HANDLE_INVALID) || IsCode(err, cryptoki.CKR_OBJECT_HANDLE_INVALID)
}
