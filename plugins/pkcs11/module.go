package pkcs11

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	cryptoki "github.com/miekg/pkcs11"
)

// C_Initialize and C_Finalize are process-wide, so backends of one
// process share a module by path: the first Open initializes it, the last
// Close finalizes it. (A plugin process normally holds one backend; tests
// open several in turn.)
var (
	modMu   sync.Mutex
	modules = map[string]*module{}
)

type module struct {
	path  string
	ctx   *cryptoki.Ctx
	owned bool // our C_Initialize succeeded: C_Finalize is ours too
	refs  int
}

func acquireModule(lib string) (*module, error) {
	path, err := filepath.Abs(lib)
	if err == nil {
		path, err = filepath.EvalSymlinks(path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: module %q: %v", ErrModule, lib, err)
	}
	modMu.Lock()
	defer modMu.Unlock()
	if m := modules[path]; m != nil {
		m.refs++
		return m, nil
	}
	ctx := cryptoki.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("%w: %q: dlopen failed or no C_GetFunctionList", ErrModule, lib)
	}
	owned := true
	if err := ctx.Initialize(); err != nil {
		if !isCode(err, cryptoki.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			ctx.Destroy()
			return nil, fmt.Errorf("%w: %q: C_Initialize: %w", ErrModule, lib, err)
		}
		owned = false
	}
	m := &module{path: path, ctx: ctx, owned: owned, refs: 1}
	modules[path] = m
	return m, nil
}

func (m *module) release() error {
	modMu.Lock()
	defer modMu.Unlock()
	if m.refs--; m.refs > 0 {
		return nil
	}
	delete(modules, m.path)
	var err error
	if m.owned {
		if e := m.ctx.Finalize(); e != nil {
			err = fmt.Errorf("pkcs11 plugin: C_Finalize: %w", e)
		}
	}
	m.ctx.Destroy()
	return err
}

func isCode(err error, code uint) bool {
	var e cryptoki.Error
	return errors.As(err, &e) && uint(e) == code
}

// sessionLost: the session is unusable; take another and try again.
func sessionLost(err error) bool {
	return isCode(err, cryptoki.CKR_SESSION_HANDLE_INVALID) ||
		isCode(err, cryptoki.CKR_SESSION_CLOSED) ||
		isCode(err, cryptoki.CKR_DEVICE_REMOVED) ||
		isCode(err, cryptoki.CKR_TOKEN_NOT_PRESENT) ||
		isCode(err, cryptoki.CKR_OPERATION_ACTIVE) ||
		isCode(err, cryptoki.CKR_USER_NOT_LOGGED_IN)
}

// objectLost: a cached object handle went stale; look the key up again.
func objectLost(err error) bool {
	return isCode(err, cryptoki.CKR_KEY_HANDLE_INVALID) || isCode(err, cryptoki.CKR_OBJECT_HANDLE_INVALID)
}
