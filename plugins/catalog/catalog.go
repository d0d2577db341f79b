// Package catalog says which plugins a node may run and runs them: the
// catalog entries (name, type, command, SHA-256 pin, version), the
// built-in plugins every node has, and the Manager that starts a crypto
// backend on first use, restarts it when its entry changes and stops it
// when the entry goes away.
//
// Entries registered by operators are replicated through Raft by the node
// (see cluster.Node.RegisterPlugin); this package only defines them and
// checks them, so that every node refuses the same mistakes. Built-in
// entries are not replicated: each node resolves them at start from its
// own installation and pins the checksum it finds then.
package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The plugin types.
const (
	TypeStorage = "storage"
	TypeCrypto  = "crypto"
)

// Errors of the catalog. Test them with errors.Is.
var (
	// ErrInvalid: an entry breaks a rule (name, type, checksum, command).
	ErrInvalid = errors.New("invalid plugin entry")
	// ErrNotFound: no plugin of that type and name is in the catalog.
	ErrNotFound = errors.New("plugin not found in the catalog")
	// ErrBuiltin: built-in plugins cannot be registered over or removed.
	ErrBuiltin = errors.New("plugin is built in")
	// ErrNoPluginDirectory: the node has no plugin_directory, so it runs
	// no registered plugin.
	ErrNoPluginDirectory = errors.New("no plugin_directory is configured on this node")
)

// Entry is one plugin of the catalog.
type Entry struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Command is the executable's file name inside plugin_directory (no
	// path separators), or an absolute path for a built-in plugin.
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	// Env holds KEY=VALUE pairs added to the plugin's environment.
	Env []string `json:"env,omitempty"`
	// SHA256 is the hex checksum of the executable; a node runs the file
	// only when it matches, at every start.
	SHA256  string `json:"sha256"`
	Version string `json:"version,omitempty"`
	Builtin bool   `json:"builtin"`
	// Generation grows with every reload: a change makes every node
	// restart the plugin.
	Generation uint64 `json:"generation,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ValidType reports whether t is a plugin type.
func ValidType(t string) bool { return t == TypeStorage || t == TypeCrypto }

// Validate checks an operator's entry. It returns an error wrapping
// ErrInvalid that says what to change.
func (e *Entry) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case !ValidType(e.Type):
		return bad("type %q is not storage or crypto", e.Type)
	case !nameRE.MatchString(e.Name):
		return bad("name %q: use 1-63 of a-z 0-9 _ . - starting with a letter or digit", e.Name)
	case e.Command == "":
		return bad("command is required: the executable's file name in plugin_directory")
	case !e.Builtin && (strings.ContainsAny(e.Command, `/\`) || e.Command == "." || e.Command == ".."):
		return bad("command %q must be a file name inside plugin_directory, without a path", e.Command)
	}
	if _, err := ParseSHA256(e.SHA256); err != nil {
		return err
	}
	for _, kv := range e.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return bad("env entry %q is not KEY=VALUE", kv)
		}
		if strings.HasPrefix(k, "LD_") || strings.HasPrefix(k, "DYLD_") {
			// The dynamic loader would run code the checksum does not pin.
			return bad("env %s is not allowed: it makes the loader run code that the sha256 does not cover", k)
		}
	}
	if len(e.Version) > 128 {
		return bad("version is longer than 128 characters")
	}
	return nil
}

// ParseSHA256 decodes a hex SHA-256 checksum.
func ParseSHA256(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%w: sha256 must be 64 hex digits (the output of sha256sum)", ErrInvalid)
	}
	return b, nil
}

// Path returns the executable an entry runs on a node whose plugin
// directory is dir. A registered plugin's file must be inside dir once
// symbolic links are followed: a link could otherwise make the catalog
// run any file on the node (its checksum is still checked).
func (e *Entry) Path(dir string) (string, error) {
	if e.Builtin {
		return e.Command, nil
	}
	if dir == "" {
		return "", ErrNoPluginDirectory
	}
	p := filepath.Join(dir, e.Command)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return p, nil // missing: the start reports it
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%w: %s is a link to %s, outside plugin_directory", ErrInvalid, p, real)
	}
	return real, nil
}

// FileSHA256 returns the hex SHA-256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
