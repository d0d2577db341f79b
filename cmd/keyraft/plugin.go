package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/keyraft/keyraft/api"
	"github.com/keyraft/keyraft/plugins/bolt"
	"github.com/keyraft/keyraft/plugins/catalog"
	"github.com/keyraft/keyraft/plugins/conformance"
	"github.com/keyraft/keyraft/plugins/pkcs11"
	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
)

// pluginEntry is a catalog entry as the API returns it.
type pluginEntry struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Command  string   `json:"command"`
	Args     []string `json:"args"`
	SHA256   string   `json:"sha256"`
	Version  string   `json:"version"`
	Builtin  bool     `json:"builtin"`
	Running  bool     `json:"running"`
	Pid      int      `json:"pid"`
	Restarts int      `json:"restarts"`
	Error    string   `json:"error,omitempty"`
}

func checkPluginType(cmd *command, t string) error {
	if !catalog.ValidType(t) {
		return &usageError{cmd: cmd, msg: fmt.Sprintf("invalid -type %q: use storage or crypto", t)}
	}
	return nil
}

var pluginRegisterCmd = &command{
	name:    "plugin register",
	args:    "NAME",
	summary: "add a plugin to the catalog (every node may then run it)",
	network: true,
	help: `
Register a plugin binary under NAME, pinned by its SHA-256: every node
checks the file's checksum before each start and refuses to run a file
that does not match. The file must be in the plugin_directory of the
servers (the node answering checks that it is there and matches).

  sha256sum ./keyraft-plugin-chacha
  cp keyraft-plugin-chacha /usr/lib/keyraft/plugins/
  keyraft plugin register -type=crypto -sha256=<hex> -command=keyraft-plugin-chacha chacha
  keyraft keys create -backend=chacha app`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		typ := fs.String("type", "", "plugin type: storage or crypto (required)")
		sum := fs.String("sha256", "", "SHA-256 of the binary, hex (required)")
		command := fs.String("command", "", "file name of the binary in plugin_directory (default: NAME)")
		version := fs.String("version", "", "version to record")
		var pargs, penv stringList
		fs.Var(&pargs, "args", "an argument for the plugin (repeatable)")
		fs.Var(&penv, "env", "KEY=VALUE for the plugin's environment (repeatable)")
		pos, err := e.positional(cmd, fs, args, 1, 1)
		if err != nil {
			return err
		}
		if err := checkPluginType(cmd, *typ); err != nil {
			return err
		}
		if *sum == "" {
			return &usageError{cmd: cmd, msg: "missing -sha256", hint: "compute it with: sha256sum FILE"}
		}
		if *command == "" {
			*command = pos[0]
		}
		if strings.ContainsAny(*command, `/\`) {
			return &usageError{cmd: cmd, msg: fmt.Sprintf("-command %q must be a file name in plugin_directory, not a path", *command),
				hint: "copy the binary into the servers' plugin_directory and give its file name: -command=" + filepath.Base(*command)}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		body := map[string]any{"sha256": *sum, "command": *command, "args": []string(pargs), "env": []string(penv), "version": *version}
		if err := c.Do(e.ctx, "PUT", "sys/plugins/catalog/"+*typ+"/"+pos[0], body, nil); err != nil {
			return &hintError{err: err, hint: "the binary must be in plugin_directory on the servers, with this sha256; registering needs a root token"}
		}
		return e.success(g, nil, "Registered %s plugin %s.", *typ, pos[0])
	},
}

var pluginListCmd = &command{
	name:    "plugin list",
	args:    "[TYPE]",
	summary: "list the plugin catalog",
	network: true,
	help: `
List the catalog: the built-in plugins (bolt, soft, pkcs11) and the
registered ones, with their SHA-256 and whether this node runs them.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, err := e.positional(cmd, fs, args, 0, 1)
		if err != nil {
			return err
		}
		if len(pos) == 1 {
			if err := checkPluginType(cmd, pos[0]); err != nil {
				return err
			}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				Detailed []pluginEntry `json:"detailed"`
			} `json:"data"`
		}
		if err := c.Do(e.ctx, "GET", "sys/plugins/catalog", nil, &out); err != nil {
			return &hintError{err: err, hint: "listing plugins needs a root token"}
		}
		list := []pluginEntry{}
		for _, p := range out.Data.Detailed {
			if len(pos) == 0 || p.Type == pos[0] {
				list = append(list, p)
			}
		}
		if g.format == "json" {
			// The answer's data, as the server shapes it, of TYPE only
			// when one is given: names by type, and the detailed list.
			data := map[string]any{"detailed": list}
			for _, t := range []string{catalog.TypeStorage, catalog.TypeCrypto} {
				if len(pos) == 0 || pos[0] == t {
					names := []string{}
					for _, p := range list {
						if p.Type == t {
							names = append(names, p.Name)
						}
					}
					data[t] = names
				}
			}
			return printJSON(e.stdout, data)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprint(tw, "Name\tType\tVersion\tBuilt in\tRunning\tSHA-256\n----\t----\t-------\t--------\t-------\t-------\n")
		for _, p := range list {
			running := "no"
			if p.Running {
				running = fmt.Sprintf("pid %d", p.Pid)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", clean(p.Name), p.Type, clean(p.Version), p.Builtin, running, p.SHA256)
		}
		return tw.Flush()
	},
}

var pluginInfoCmd = &command{
	name:    "plugin info",
	args:    "NAME",
	summary: "show one plugin of the catalog",
	network: true,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		typ := fs.String("type", "crypto", "plugin type: storage or crypto")
		pos, err := e.positional(cmd, fs, args, 1, 1)
		if err != nil {
			return err
		}
		if err := checkPluginType(cmd, *typ); err != nil {
			return err
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		var out struct {
			Data pluginEntry `json:"data"`
		}
		if err := c.Do(e.ctx, "GET", "sys/plugins/catalog/"+*typ+"/"+pos[0], nil, &out); err != nil {
			return &hintError{err: err, hint: "see the catalog with 'keyraft plugin list'"}
		}
		if g.format == "json" {
			return printJSON(e.stdout, out.Data)
		}
		p := out.Data
		rows := []row{{"Name", p.Name}, {"Type", p.Type}, {"Command", p.Command}, {"Args", strings.Join(p.Args, " ")},
			{"SHA-256", p.SHA256}, {"Version", p.Version}, {"Built in", fmt.Sprint(p.Builtin)},
			{"Running on this node", fmt.Sprint(p.Running)}}
		if p.Running {
			rows = append(rows, row{"Pid", fmt.Sprint(p.Pid)}, row{"Restarts", fmt.Sprint(p.Restarts)})
		}
		if p.Error != "" {
			rows = append(rows, row{"Error", p.Error})
		}
		printTable(e.stdout, rows)
		return nil
	},
}

var pluginReloadCmd = &command{
	name:    "plugin reload",
	args:    "NAME",
	summary: "restart a crypto plugin on every node",
	network: true,
	help: `
Restart the crypto plugin NAME on every node (for a new binary with the
same checksum pin, or to clear a wedged process). Requests in flight on
the old process finish or fail; later ones go to the new process. The node
that answers restarts it at once and fails the command with the reason
when the new process does not start (a checksum that does not match, a
plugin that exits); the other nodes restart it on its next use there.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		data, _, err := e.call(c, "PUT", "sys/plugins/reload/backend", map[string]any{"plugin": pos[0]})
		var re *api.ResponseError
		switch {
		case errors.As(err, &re) && re.StatusCode == 503:
			return &hintError{err: err, hint: fmt.Sprintf("fix what the error names (the binary in plugin_directory, its settings), or register the new binary's -sha256; then reload again. 'keyraft plugin info %s' shows the error", pos[0])}
		case err != nil:
			return &hintError{err: err, hint: "see the catalog with 'keyraft plugin list'"}
		}
		return e.success(g, data, "Reloaded plugin %s: it runs again on this node; the other nodes restart it on its next use.", pos[0])
	},
}

var pluginDeregisterCmd = &command{
	name:    "plugin deregister",
	args:    "NAME",
	summary: "remove a plugin from the catalog",
	network: true,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		typ := fs.String("type", "", "plugin type: storage or crypto (required)")
		pos, err := e.positional(cmd, fs, args, 1, 1)
		if err != nil {
			return err
		}
		if err := checkPluginType(cmd, *typ); err != nil {
			return err
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		if err := c.Do(e.ctx, "DELETE", "sys/plugins/catalog/"+*typ+"/"+pos[0], nil, nil); err != nil {
			return &hintError{err: err, hint: "built-in plugins cannot be deregistered"}
		}
		return e.success(g, nil, "Deregistered %s plugin %s.", *typ, pos[0])
	},
}

var pluginTestCmd = &command{
	name:    "plugin test",
	args:    "FILE [PLUGIN ARGS]",
	summary: "run the conformance suite against a plugin binary",
	help: `
Start the plugin binary FILE as a node would (checksum pinned, mutual TLS)
and run every check of the storage or crypto contract against it, then
kill it once with SIGKILL and check what must survive. Prints PASS, FAIL
or SKIP per check and exits non-zero when a check fails. Arguments after
FILE are passed to the plugin; for a storage plugin, {{dir}} in them is
replaced by a fresh directory per check. Needs no server.

  keyraft plugin test -type=crypto ./keyraft-plugin-chacha
  KEYRAFT_HSM_PIN=1234 keyraft plugin test -type=crypto ./keyraft-plugin-pkcs11 -lib /usr/lib/softhsm/libsofthsm2.so -token-label kms`,
	run: func(e *env, cmd *command, args []string) error {
		fs, _ := e.flags(cmd)
		typ := fs.String("type", "", "plugin type: storage or crypto (required)")
		pos, err := e.positional(cmd, fs, args, 1, 1<<20)
		if err != nil {
			return err
		}
		if err := checkPluginType(cmd, *typ); err != nil {
			return err
		}
		failed, err := conformance.RunBinary(e.ctx, *typ, pos[0], pos[1:], e.stdout)
		if err != nil {
			return &hintError{err: err, hint: "FILE is the plugin binary, built with plugins/sdk"}
		}
		if failed > 0 {
			return &hintError{err: fmt.Errorf("%d conformance checks failed", failed), hint: "see the FAIL lines above; docs/plugins.md explains each contract rule"}
		}
		return nil
	},
}

// pluginServeBuiltinCmd is how a node runs a built-in plugin when no
// keyraft-plugin-<name> binary is installed: it starts its own binary
// with these arguments (see plugins/catalog.ResolveBuiltins).
var pluginServeBuiltinCmd = &command{
	name:    "plugin serve-builtin",
	args:    "NAME [PLUGIN FLAGS]",
	summary: "serve a built-in plugin (started by a keyraft node, not by hand)",
	noFlags: true,
	help: `
Serve the built-in plugin NAME (bolt, soft or pkcs11) over the plugin
protocol. A keyraft node runs its own binary this way when no
keyraft-plugin-NAME binary is installed next to it or in plugin_directory.`,
	run: func(e *env, cmd *command, args []string) error {
		if len(args) == 0 {
			return &usageError{cmd: cmd, msg: "missing NAME", hint: "built-in plugins: bolt, soft, pkcs11"}
		}
		if isHelpFlag(args[0]) {
			fs, _ := e.flags(cmd)
			e.manual(cmd, fs)
			return nil
		}
		if !sdk.LaunchedByNode() {
			return &hintError{err: fmt.Errorf("keyraft plugin serve-builtin %s is run by a keyraft node, not by hand", args[0]),
				hint: "start a server: keyraft server -dev"}
		}
		return serveBuiltin(args[0], args[1:])
	},
}

// serveBuiltin serves one built-in plugin until the node stops it.
func serveBuiltin(name string, args []string) error {
	log := sdk.Logger()
	switch name {
	case "bolt":
		fs := flag.NewFlagSet("bolt", flag.ContinueOnError)
		path := fs.String("path", "", "bbolt file")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *path == "" {
			return errors.New("bolt plugin: missing -path")
		}
		store, err := bolt.Open(*path)
		if err != nil {
			log.Error("opening the store", "path", *path, "error", err)
			return err
		}
		sdk.ServeStorage(store)
		return nil
	case "soft":
		sdk.ServeCrypto(soft.New())
		return nil
	case "pkcs11":
		return pkcs11.Serve(args, os.Getenv)
	}
	return fmt.Errorf("unknown built-in plugin %q", name)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }
