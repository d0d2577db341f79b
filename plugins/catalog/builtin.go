package catalog

import (
	"fmt"
	"os"
	"path/filepath"
)

// A built-in plugin ships with keyraft: its own binary
// (keyraft-plugin-<name>, built from cmd/) when one is installed next to
// keyraft or in plugin_directory, otherwise the keyraft binary itself run
// as `keyraft plugin serve-builtin <name>`, so that a node started with
// `go run ./cmd/keyraft` has its backends with no extra set-up. Either
// way it is a separate process pinned by the checksum found at start.
type Builtin struct {
	Name, Type string
}

// Builtins are the plugins every node has.
var Builtins = []Builtin{
	{Name: "bolt", Type: TypeStorage},
	{Name: "soft", Type: TypeCrypto},
	{Name: "pkcs11", Type: TypeCrypto},
}

// ServeBuiltinArgs are the arguments that make the keyraft binary serve
// the built-in plugin name instead of running as the CLI.
func ServeBuiltinArgs(name string) []string { return []string{"plugin", "serve-builtin", name} }

// IsBuiltin reports whether typ/name is a built-in plugin.
func IsBuiltin(typ, name string) bool {
	for _, b := range Builtins {
		if b.Name == name && b.Type == typ {
			return true
		}
	}
	return false
}

// ResolveBuiltins finds the executable of every built-in plugin and pins
// its checksum: first keyraft-plugin-<name> in pluginDir, then next to
// self (the running keyraft binary), then self with ServeBuiltinArgs.
// extra are arguments added per plugin name (a built-in's settings from
// the server config).
func ResolveBuiltins(pluginDir, self string, extra map[string][]string, env map[string][]string) ([]Entry, error) {
	var dirs []string
	if pluginDir != "" {
		dirs = append(dirs, pluginDir)
	}
	if self != "" {
		dirs = append(dirs, filepath.Dir(self))
	}
	var out []Entry
	for _, b := range Builtins {
		e := Entry{Name: b.Name, Type: b.Type, Builtin: true, Version: "builtin"}
		for _, d := range dirs {
			p := filepath.Join(d, "keyraft-plugin-"+b.Name)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				e.Command = p
				break
			}
		}
		if e.Command == "" {
			if self == "" {
				return nil, fmt.Errorf("built-in plugin %s: no keyraft-plugin-%s found and the keyraft binary is unknown", b.Name, b.Name)
			}
			e.Command, e.Args = self, ServeBuiltinArgs(b.Name)
		}
		e.Args = append(e.Args, extra[b.Name]...)
		e.Env = append(e.Env, env[b.Name]...)
		sum, err := FileSHA256(e.Command)
		if err != nil {
			return nil, fmt.Errorf("built-in plugin %s: %v", b.Name, err)
		}
		e.SHA256 = sum
		out = append(out, e)
	}
	return out, nil
}
