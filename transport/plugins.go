package transport

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/keyraft/keyraft/plugins/catalog"
	"github.com/keyraft/keyraft/transit"
)

// The plugin catalog API, in Vault's shape:
//
//	GET    sys/plugins/catalog                 every plugin, by type and detailed
//	LIST   sys/plugins/catalog/:type           names of one type
//	GET    sys/plugins/catalog/:type/:name     one entry, and its state on this node
//	PUT    sys/plugins/catalog/:type/:name     register {sha256, command, args, env, version}
//	DELETE sys/plugins/catalog/:type/:name     deregister
//	PUT    sys/plugins/reload/backend          {"plugin": NAME[, "type": TYPE]}: restart it on every node
//
// Every path needs sudo, as in Vault.
// pluginTarget is the type and name a sys/plugins/catalog/:type/:name
// request names.
func pluginTarget(req *request) (typ, name string, _ *reply) {
	typ, name = req.params["type"], req.params["name"]
	if !catalog.ValidType(typ) {
		r := errReply(http.StatusBadRequest, fmt.Sprintf("unknown plugin type %q: use storage or crypto", typ))
		return "", "", &r
	}
	req.ev.Key = typ + "/" + name
	return typ, name, nil
}

func (a *API) pluginDeregister(req *request) reply {
	typ, name, r := pluginTarget(req)
	if r != nil {
		return *r
	}
	if err := a.cfg.Node.DeregisterPlugin(req.ctx, typ, name); err != nil {
		return a.pluginError(err)
	}
	if a.cfg.Plugins != nil && typ == catalog.TypeCrypto {
		a.cfg.Plugins.Forget(name)
	}
	return reply{status: http.StatusNoContent}
}

func (a *API) pluginError(err error) reply {
	switch {
	case errors.Is(err, catalog.ErrInvalid), errors.Is(err, catalog.ErrBuiltin):
		return errReply(http.StatusBadRequest, err.Error())
	case errors.Is(err, catalog.ErrNotFound):
		return errReply(http.StatusNotFound, err.Error())
	}
	return a.errorReply(err)
}

// pluginView is an entry as the API shows it: Vault's field names, plus
// this node's process state.
func (a *API) pluginView(e catalog.Entry) map[string]any {
	v := map[string]any{
		"name": e.Name, "type": e.Type, "command": e.Command, "args": e.Args, "sha256": e.SHA256,
		"version": e.Version, "builtin": e.Builtin, "deprecation_status": "supported",
	}
	if e.Args == nil {
		v["args"] = []string{}
	}
	if a.cfg.Plugins != nil {
		if st, ok := a.cfg.Plugins.Status()[e.Name]; ok {
			v["running"], v["pid"], v["restarts"] = st.Running, st.Pid, st.Restarts
			if st.Error != "" {
				v["error"] = st.Error
			}
		} else {
			v["running"] = false
		}
	}
	return v
}

func (a *API) pluginList(*request) reply {
	entries, err := a.cfg.Node.Plugins("")
	if err != nil {
		return a.pluginError(err)
	}
	data := map[string]any{catalog.TypeStorage: []string{}, catalog.TypeCrypto: []string{}}
	detailed := []map[string]any{}
	for _, e := range entries {
		data[e.Type] = append(data[e.Type].([]string), e.Name)
		detailed = append(detailed, a.pluginView(e))
	}
	data["detailed"] = detailed
	return reply{data: data}
}

func (a *API) pluginNames(req *request) reply {
	typ := req.params["type"]
	if !catalog.ValidType(typ) {
		return errReply(http.StatusBadRequest, fmt.Sprintf("unknown plugin type %q: use storage or crypto", typ))
	}
	entries, err := a.cfg.Node.Plugins(typ)
	if err != nil {
		return a.pluginError(err)
	}
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name)
	}
	return reply{data: map[string]any{"keys": names}}
}

func (a *API) pluginRead(req *request) reply {
	typ, name, r := pluginTarget(req)
	if r != nil {
		return *r
	}
	e, err := a.cfg.Node.PluginEntry(typ, name)
	if err != nil {
		return a.pluginError(err)
	}
	return reply{data: a.pluginView(*e)}
}

// pluginRegisterBody is the body of a registration.
type pluginRegisterBody struct {
	SHA256  string   `json:"sha256"`
	Command string   `json:"command"`
	Args    []string `json:"args"`
	Env     []string `json:"env"`
	Version string   `json:"version"`
}

// decodePluginRegister decodes a registration body strictly: an unknown
// field is a mistake worth a 400, not a silent default.
func decodePluginRegister(f *transit.Fields) (*pluginRegisterBody, error) {
	var b pluginRegisterBody
	if len(f.Names()) == 0 {
		return nil, errors.New("missing request body: send {\"sha256\": ..., \"command\": ...}")
	}
	if err := f.Decode(&b); err != nil {
		return nil, fmt.Errorf("invalid request body: %v", err)
	}
	if u := f.Unused(); len(u) > 0 {
		return nil, fmt.Errorf("invalid request body: unknown field %q", transit.Truncate(u[0]))
	}
	return &b, nil
}

// pluginRegister adds an entry after checking the binary on this node: a
// registration that this node could not run is refused at once, with the
// reason, rather than at first use.
func (a *API) pluginRegister(req *request) reply {
	typ, name, r := pluginTarget(req)
	if r != nil {
		return *r
	}
	f, r := req.parsed()
	if r != nil {
		return *r
	}
	b, err := decodePluginRegister(f)
	if err != nil {
		return errReply(http.StatusBadRequest, err.Error())
	}
	e := catalog.Entry{Name: name, Type: typ, Command: b.Command, Args: b.Args, Env: b.Env,
		SHA256: strings.ToLower(strings.TrimSpace(b.SHA256)), Version: b.Version}
	if catalog.IsBuiltin(typ, name) {
		return a.pluginError(fmt.Errorf("%w: %s plugin %q ships with keyraft and cannot be registered over; pick another name", catalog.ErrBuiltin, typ, name))
	}
	if err := e.Validate(); err != nil {
		return a.pluginError(err)
	}
	path, err := e.Path(a.cfg.PluginDirectory)
	if errors.Is(err, catalog.ErrNoPluginDirectory) {
		return errReply(http.StatusBadRequest, err.Error()+": set plugin_directory in the server config and put the plugin there")
	}
	if err != nil {
		return a.pluginError(err)
	}
	sum, err := catalog.FileSHA256(path)
	if errors.Is(err, os.ErrNotExist) {
		return errReply(http.StatusBadRequest, fmt.Sprintf("command %q not found in plugin_directory of node %s", e.Command, a.cfg.Node.Config().NodeID))
	}
	if err != nil {
		return errReply(http.StatusBadRequest, fmt.Sprintf("cannot read command %q: %v", e.Command, err))
	}
	if sum != e.SHA256 {
		return errReply(http.StatusBadRequest, fmt.Sprintf("sha256 mismatch: %s in plugin_directory has sha256 %s, the request says %s", e.Command, sum, e.SHA256))
	}
	if err := a.cfg.Node.RegisterPlugin(req.ctx, e); err != nil {
		return a.pluginError(err)
	}
	return reply{status: http.StatusNoContent}
}

func (a *API) pluginReload(req *request) reply {
	var b struct {
		Plugin string   `json:"plugin"`
		Type   string   `json:"type"`
		Mounts []string `json:"mounts"`
		Scope  string   `json:"scope"`
	}
	if r := req.decode(&b); r != nil {
		return *r
	}
	if b.Plugin == "" {
		return errReply(http.StatusBadRequest, "missing plugin: the name of the plugin to reload")
	}
	if len(b.Mounts) > 0 {
		return errReply(http.StatusBadRequest, "mounts are not used by keyraft: reload a plugin by name")
	}
	if b.Type == "" {
		b.Type = catalog.TypeCrypto
	}
	if b.Type == catalog.TypeStorage {
		return errReply(http.StatusBadRequest, "the storage plugin holds the node's state and restarts only with the node")
	}
	if !catalog.ValidType(b.Type) {
		return errReply(http.StatusBadRequest, fmt.Sprintf("unknown plugin type %q: use crypto", b.Type))
	}
	req.ev.Key = b.Type + "/" + b.Plugin
	if err := a.cfg.Node.ReloadPlugin(req.ctx, b.Type, b.Plugin); err != nil {
		return a.pluginError(err)
	}
	// Every node restarts the plugin on its next use; this one does now,
	// so that a new binary it refuses (checksum, a failed start) is this
	// answer's error, not the next request's.
	if a.cfg.Plugins != nil {
		if _, err := a.cfg.Plugins.Crypto(req.ctx, b.Plugin); err != nil {
			return errReply(http.StatusServiceUnavailable, fmt.Sprintf("plugin %q was reloaded in the catalog, but it does not start on this node: %v", b.Plugin, err))
		}
	}
	return reply{data: map[string]any{"reload_id": req.ev.RequestID}}
}
