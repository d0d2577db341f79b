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
// state is shared by all of the application's sessions on it (a second
// C_Login answers CKR_USER_ALREADY_LOGGED_IN; one C_Logout logs every
// session out). The registry below therefore reference-counts modules
// and logins, so that any number of Seals — one after another, or at the
// same time on different (or the same) tokens — can Open and Close
// independently. The last Close of a module finalizes and unloads it; the
// next Open loads and initializes it afresh.

var (
	registryMu sync.Mutex
	modules    = map[string]*module{} // by resolved library path
	// pinMACKey keys the PIN fingerprints the registry keeps to check a
	// second Seal's PIN against a login that already exists.
	pinMACKey = func() []byte {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			panic("pkcs11 seal: reading randomness: " + err.Error())
		}
		return k
	}()
)

type module struct {
	path  string
	ctx   *cryptoki.Ctx
	owned bool // this package's C_Initialize succeeded, so it calls C_Finalize
	refs  int
	// logins, by slot ID, counts the Seals relying on the user login.
	logins map[uint]*login
}

type login struct {
	refs int
	pin  []byte // HMAC-SHA-256(pinMACKey, PIN), never the PIN
}

func pinFingerprint(pin string) []byte {
	m := hmac.New(sha256.New, pinMACKey)
	m.Write([]byte(pin))
	return m.Sum(nil)
}

// resolveLib makes equal paths (symlinks, relative paths) share one
// registry entry. A bare file name is left for the dynamic loader to find.
func resolveLib(lib string) (string, error) {
	if !strings.ContainsRune(lib, os.PathSeparator) {
		return lib, nil
	}
	p, err := filepath.Abs(lib)
	if err != nil {
		return "", err
	}
	p, err = filepath.EvalSymlinks(p)
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
func acquireModule(lib string) (*module, error) {
	path, err := resolveLib(lib)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrModule, lib, err)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if m := modules[path]; m != nil {
		m.refs++
		return m, nil
	}
	ctx := cryptoki.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("%w %q: dlopen failed or the library has no C_GetFunctionList", ErrModule, lib)
	}
	owned := true
	if err := ctx.Initialize(); err != nil {
		if !errors.Is(err, cryptoki.Error(cryptoki.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			ctx.Destroy()
			return nil, fmt.Errorf("%w %q: C_Initialize: %w", ErrModule, lib, err)
		}
		// Someone else in this process (another library linking the
		// same module) initialized it; they own C_Finalize.
		owned = false
	}
	m := &module{path: path, ctx: ctx, owned: owned, refs: 1, logins: map[uint]*login{}}
	modules[path] = m
	return m, nil
}

// release drops a reference; the last one finalizes and unloads the module.
func (m *module) release() error {
	registryMu.Lock()
	defer registryMu.Unlock()
	m.refs--
	if m.refs > 0 {
		return nil
	}
	delete(modules, m.path)
	var err error
	if m.owned {
		if e := m.ctx.Finalize(); e != nil {
			err = fmt.Errorf("pkcs11 seal: C_Finalize: %w", e)
		}
	}
	m.ctx.Destroy()
	return err
}

// acquireLogin logs the user in on slot through session sh, or, when a
// Seal of this process is already logged in there, checks that pin is the
// same PIN and takes another reference.
func (m *module) acquireLogin(slot uint, token string, sh cryptoki.SessionHandle, pin string) error {
	fp := pinFingerprint(pin)
	registryMu.Lock()
	defer registryMu.Unlock()
	if l := m.logins[slot]; l != nil {
		if !hmac.Equal(l.pin, fp) {
			return fmt.Errorf("%w: token %q is already logged in by this process with a different PIN", ErrPIN, token)
		}
		l.refs++
		return nil
	}
	if err := m.ctx.Login(sh, cryptoki.CKU_USER, pin); err != nil &&
		!errors.Is(err, cryptoki.Error(cryptoki.CKR_USER_ALREADY_LOGGED_IN)) {
		return loginError(token, err)
	}
	m.logins[slot] = &login{refs: 1, pin: fp}
	return nil
}

// releaseLogin drops a login reference; the last one logs out through sh
// (when sh is not 0).
func (m *module) releaseLogin(slot uint, sh cryptoki.SessionHandle, haveSession bool) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	l := m.logins[slot]
	if l == nil {
		return nil
	}
	l.refs--
	if l.refs > 0 {
		return nil
	}
	delete(m.logins, slot)
	if !haveSession {
		return nil // no session left: the token already logged us out
	}
	if err := m.ctx.Logout(sh); err != nil && !isCode(err, cryptoki.CKR_USER_NOT_LOGGED_IN) && !sessionLost(err) {
		return fmt.Errorf("pkcs11 seal: C_Logout: %w", err)
	}
	return nil
}

// loginError classifies a C_Login failure. The PIN is never part of it.
func loginError(token string, err error) error {
	switch {
	case isCode(err, cryptoki.CKR_PIN_INCORRECT):
		return fmt.Errorf("%w: token %q: incorrect PIN (%w)", ErrPIN, token, err)
	case isCode(err, cryptoki.CKR_PIN_LOCKED):
		return fmt.Errorf("%w: token %q: the user PIN is locked; the security officer must reset it (%w)", ErrPIN, token, err)
	case isCode(err, cryptoki.CKR_PIN_EXPIRED), isCode(err, cryptoki.CKR_PIN_INVALID), isCode(err, cryptoki.CKR_PIN_LEN_RANGE):
		return fmt.Errorf("%w: token %q: %w", ErrPIN, token, err)
	}
	return fmt.Errorf("pkcs11 seal: C_Login on token %q: %w", token, err)
}

func isCode(err error, code uint) bool {
	var e cryptoki.Error
	return errors.As(err, &e) && uint(e) == code
}

// sessionLost reports errors after which a session is unusable and must be
// replaced.
func sessionLost(err error) bool {
	return isCode(err, cryptoki.CKR_SESSION_HANDLE_INVALID) ||
		isCode(err, cryptoki.CKR_SESSION_CLOSED) ||
		isCode(err, cryptoki.CKR_DEVICE_REMOVED) ||
		isCode(err, cryptoki.CKR_TOKEN_NOT_PRESENT) ||
		isCode(err, cryptoki.CKR_OPERATION_ACTIVE) ||
		isCode(err, cryptoki.CKR_USER_NOT_LOGGED_IN)
}

// keyLost reports errors after which the key handles must be looked up
// again (the token was re-inserted, or the object store reloaded).
func keyLost(err error) bool {
	return isCode(err, cryptoki.CKR_KEY_HANDLE_INVALID) || isCode(err, cryptoki.CKR_OBJECT_HANDLE_INVALID)
}
