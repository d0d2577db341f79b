package catalog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodSum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestEntryValidate(t *testing.T) {
	good := Entry{Name: "chacha", Type: TypeCrypto, Command: "keyraft-plugin-chacha", SHA256: goodSum}
	if err := good.Validate(); err != nil {
		t.Fatalf("good entry refused: %v", err)
	}
	cases := []struct {
		name   string
		change func(e *Entry)
		want   string
	}{
		{"bad type", func(e *Entry) { e.Type = "database" }, "not storage or crypto"},
		{"empty name", func(e *Entry) { e.Name = "" }, "name"},
		{"upper-case name", func(e *Entry) { e.Name = "Chacha" }, "name"},
		{"name with slash", func(e *Entry) { e.Name = "a/b" }, "name"},
		{"long name", func(e *Entry) { e.Name = strings.Repeat("a", 64) }, "name"},
		{"no command", func(e *Entry) { e.Command = "" }, "command is required"},
		{"command with path", func(e *Entry) { e.Command = "../bin/x" }, "without a path"},
		{"absolute command", func(e *Entry) { e.Command = "/usr/bin/x" }, "without a path"},
		{"dot command", func(e *Entry) { e.Command = ".." }, "without a path"},
		{"short sha", func(e *Entry) { e.SHA256 = "abcd" }, "64 hex digits"},
		{"non-hex sha", func(e *Entry) { e.SHA256 = strings.Repeat("z", 64) }, "64 hex digits"},
		{"bad env", func(e *Entry) { e.Env = []string{"NOEQUALS"} }, "KEY=VALUE"},
		{"empty env key", func(e *Entry) { e.Env = []string{"=v"} }, "KEY=VALUE"},
		{"long version", func(e *Entry) { e.Version = strings.Repeat("1", 129) }, "version"},
		{"LD_PRELOAD", func(e *Entry) { e.Env = []string{"LD_PRELOAD=/tmp/x.so"} }, "loader"},
		{"DYLD_INSERT_LIBRARIES", func(e *Entry) { e.Env = []string{"DYLD_INSERT_LIBRARIES=/tmp/x"} }, "loader"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := good
			c.change(&e)
			err := e.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want ErrInvalid mentioning %q", err, c.want)
			}
		})
	}
}

func TestEntryPath(t *testing.T) {
	e := Entry{Name: "x", Type: TypeCrypto, Command: "keyraft-plugin-x", SHA256: goodSum}
	if _, err := e.Path(""); !errors.Is(err, ErrNoPluginDirectory) {
		t.Fatalf("Path without a plugin directory = %v, want ErrNoPluginDirectory", err)
	}
	if p, err := e.Path("/plugins"); err != nil || p != "/plugins/keyraft-plugin-x" {
		t.Fatalf("Path = %q, %v", p, err)
	}
	// Links are followed, and must stay inside the plugin directory.
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	os.Mkdir(plugins, 0o755)
	os.WriteFile(filepath.Join(plugins, "real"), []byte("x"), 0o755)
	os.WriteFile(filepath.Join(dir, "outside"), []byte("x"), 0o755)
	os.Symlink("real", filepath.Join(plugins, "inside-link"))
	os.Symlink(filepath.Join(dir, "outside"), filepath.Join(plugins, "outside-link"))
	in := Entry{Name: "x", Type: TypeCrypto, Command: "inside-link", SHA256: goodSum}
	if p, err := in.Path(plugins); err != nil || filepath.Base(p) != "real" {
		t.Fatalf("link inside: %q, %v", p, err)
	}
	out := Entry{Name: "x", Type: TypeCrypto, Command: "outside-link", SHA256: goodSum}
	if _, err := out.Path(plugins); !errors.Is(err, ErrInvalid) {
		t.Fatalf("link outside: err = %v, want ErrInvalid", err)
	}
}

func TestResolveBuiltins(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "bin", "keyraft")
	os.MkdirAll(filepath.Dir(self), 0o755)
	os.WriteFile(self, []byte("keyraft binary"), 0o755)
	pluginDir := filepath.Join(dir, "plugins")
	os.MkdirAll(pluginDir, 0o755)
	// bolt installed in plugin_directory, soft next to keyraft, pkcs11 nowhere.
	os.WriteFile(filepath.Join(pluginDir, "keyraft-plugin-bolt"), []byte("bolt binary"), 0o755)
	os.WriteFile(filepath.Join(filepath.Dir(self), "keyraft-plugin-soft"), []byte("soft binary"), 0o755)
	// A file that is not executable does not count.
	os.WriteFile(filepath.Join(pluginDir, "keyraft-plugin-pkcs11"), []byte("not executable"), 0o644)

	got, err := ResolveBuiltins(pluginDir, self, map[string][]string{"pkcs11": {"-lib", "/x.so"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Entry{}
	for _, e := range got {
		if !e.Builtin {
			t.Fatalf("%s not marked built in", e.Name)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("resolved entry %s invalid: %v", e.Name, err)
		}
		byName[e.Name] = e
	}
	sumOf := func(p string) string { s, _ := FileSHA256(p); return s }
	if e := byName["bolt"]; e.Command != filepath.Join(pluginDir, "keyraft-plugin-bolt") || len(e.Args) != 0 || e.SHA256 != sumOf(e.Command) {
		t.Fatalf("bolt = %+v", e)
	}
	if e := byName["soft"]; e.Command != filepath.Join(filepath.Dir(self), "keyraft-plugin-soft") || e.SHA256 != sumOf(e.Command) {
		t.Fatalf("soft = %+v", e)
	}
	e := byName["pkcs11"]
	if e.Command != self || strings.Join(e.Args, " ") != "plugin serve-builtin pkcs11 -lib /x.so" || e.SHA256 != sumOf(self) {
		t.Fatalf("pkcs11 = %+v", e)
	}
	if !IsBuiltin(TypeCrypto, "soft") || IsBuiltin(TypeStorage, "soft") || IsBuiltin(TypeCrypto, "chacha") {
		t.Fatal("IsBuiltin is wrong")
	}
}

// FuzzEntry: a catalog record from the replicated state (or an API body
// decoded into it) never panics Validate or Path, and a valid entry's
// command never escapes the plugin directory.
func FuzzEntry(f *testing.F) {
	f.Add([]byte(`{"name":"chacha","type":"crypto","command":"keyraft-plugin-chacha","sha256":"` + goodSum + `"}`))
	f.Add([]byte(`{"name":"x","type":"storage","command":"../../etc/passwd","sha256":"` + goodSum + `","env":["A=B"]}`))
	f.Add([]byte(`{"name":"","type":"","generation":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		if json.Unmarshal(b, &e) != nil {
			return
		}
		e.Builtin = false
		if e.Validate() != nil {
			return
		}
		p, err := e.Path("/plugins")
		if err != nil || filepath.Dir(p) != "/plugins" {
			t.Fatalf("valid entry %+v resolves to %q (%v), outside the plugin directory", e, p, err)
		}
	})
}
