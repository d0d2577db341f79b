package transport

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/transit"
)

// transitRoutes are the rows of the transit engine, always mounted at
// transit/. Every row is namespaced and leased (served from the local
// state while in touch with the leader).
func transitRoutes() []route {
	rows := []route{
		{pattern: "transit/keys", methods: mList, handler: (*API).listKeys, summary: "List the keys."},
		{pattern: "transit/keys/:name", methods: mGet, key: "name", handler: (*API).readKey, summary: "Read a key: its type, versions, policy and lifecycle state."},
		{pattern: "transit/keys/:name", methods: mPost, key: "name", handler: (*API).createKey, summary: "Create a key."},
		{pattern: "transit/keys/:name", methods: mDel, key: "name", committed: http.StatusNoContent, handler: (*API).deleteKey, summary: "Delete a key (deletion_allowed must be set)."},
		{pattern: "transit/keys/:name/import", methods: mPost, key: "name", committed: http.StatusNoContent, handler: (*API).importKey, summary: "Import a key wrapped under the wrapping key (BYOK)."},
		{pattern: "transit/keys/:name/import_version", methods: mPost, key: "name", committed: http.StatusNoContent, handler: (*API).importKeyVersion, summary: "Import a new version of an imported key."},
		{pattern: "transit/keys/:name/rotate", methods: mPost, key: "name", handler: keyCall((*transit.Engine).RotateKey), summary: "Add a new version and make it the one that encrypts."},
		{pattern: "transit/keys/:name/config", methods: mPost, key: "name", handler: keyFieldsCall((*transit.Engine).ConfigKey), summary: "Change a key's policy (min versions, deletion, export, rotation)."},
		{pattern: "transit/keys/:name/trim", methods: mPost, key: "name", handler: keyFieldsCall((*transit.Engine).TrimKey), summary: "Destroy the versions below min_available_version."},
		{pattern: "transit/config/keys", methods: mGet, handler: (*API).readKeysConfig, summary: "The engine's key settings (disable_upsert)."},
		{pattern: "transit/config/keys", methods: mPost, handler: (*API).writeKeysConfig, summary: "Change the key settings: disable_upsert stops encrypt from creating missing keys."},
		{pattern: "transit/wrapping_key", methods: mGet, handler: (*API).wrappingKey, summary: "The RSA public key that wraps keys for import."},
		{pattern: "transit/backup/:name", methods: mGet, key: "name", handler: (*API).backupKey, summary: "Back a key up (exportable and allow_plaintext_backup must be set); ?format=vault or openbao gives the backup that Vault's or OpenBao's transit/restore takes."},
		{pattern: "transit/restore/:name?", methods: mPost, key: "name", sensitive: []string{"backup"}, committed: http.StatusNoContent, handler: (*API).restoreKey, summary: "Restore a key from a backup, under its own or the given name."},
		{pattern: "transit/export/:type/:name/:version?", methods: mGet, key: "name", handler: (*API).exportKey, summary: "Export a key's versions (exportable keys only)."},
		{pattern: "transit/random/:a?/:b?", methods: mPost, handler: (*API).random, summary: "Random bytes (:a and :b are the byte count and the source, in either order)."},
		{pattern: "transit/hash/:algorithm?", methods: mPost, handler: dataOp(func(_ *transit.Engine, _ *request, f *transit.Fields) (*transit.Response, error) {
			return transit.Hash(f)
		}, "algorithm"), summary: "Hash data."},
		{pattern: "transit/encrypt/:name", methods: mPost, key: "name", createIfMissing: true, handler: dataOp(keyOp((*transit.Engine).Encrypt)), summary: "Encrypt (creates the key when the caller may create it)."},
		{pattern: "transit/decrypt/:name", methods: mPost, key: "name", handler: dataOp(keyOp((*transit.Engine).Decrypt)), summary: "Decrypt."},
		{pattern: "transit/rewrap/:name", methods: mPost, key: "name", handler: dataOp(keyOp((*transit.Engine).Rewrap)), summary: "Decrypt and encrypt again under the newest version, without returning the plaintext."},
		{pattern: "transit/datakey/:type/:name", methods: mPost, key: "name", handler: dataOp(dataKey), summary: "Generate a data key, returned wrapped (and in plaintext for type plaintext)."},
		{pattern: "transit/sign/:name/:hash_algorithm?", methods: mPost, key: "name", handler: dataOp(keyOp((*transit.Engine).Sign), "hash_algorithm"), summary: "Sign data."},
		{pattern: "transit/verify/:name/:hash_algorithm?", methods: mPost, key: "name", handler: dataOp(keyOp((*transit.Engine).Verify), "hash_algorithm"), summary: "Verify a signature or an HMAC."},
		{pattern: "transit/hmac/:name/:algorithm?", methods: mPost, key: "name", handler: dataOp(keyOp((*transit.Engine).HMAC), "algorithm"), summary: "HMAC data."},
	}
	for _, action := range transit.LifecycleActions {
		rows = append(rows, route{pattern: "transit/keys/:name/" + action, methods: mPost, key: "name",
			handler: (*API).changeState, summary: "Lifecycle: " + action + " the key."})
	}
	for i := range rows {
		rows[i].auth, rows[i].namespaced, rows[i].lease = tokenAuth, true, true
		// The engine's settings are the cluster's, set in the root namespace.
		rows[i].namespaced = rows[i].pattern != "transit/config/keys"
	}
	return rows
}

// The method sets of rows.
var (
	mGet     = []string{http.MethodGet}
	mPost    = []string{http.MethodPost}
	mDel     = []string{http.MethodDelete}
	mList    = []string{"LIST"}
	mGetList = []string{http.MethodGet, "LIST"}
)

// keyOp adapts an engine method on the request's key.
func keyOp(op func(*transit.Engine, context.Context, string, *transit.Fields) (*transit.Response, error)) func(*transit.Engine, *request, *transit.Fields) (*transit.Response, error) {
	return func(e *transit.Engine, req *request, f *transit.Fields) (*transit.Response, error) {
		return op(e, req.ctx, req.key(), f)
	}
}

func dataKey(e *transit.Engine, req *request, f *transit.Fields) (*transit.Response, error) {
	return e.DataKey(req.ctx, req.params["type"], req.key(), f)
}

// dataOp is the handler of a data operation: the body with the named path
// parameters as fields (sign/:name/:hash_algorithm is the field
// hash_algorithm), the engine's answer with the key version in the event
// and Vault's warning about ignored fields.
func dataOp(op func(*transit.Engine, *request, *transit.Fields) (*transit.Response, error), pathFields ...string) func(*API, *request) reply {
	return func(a *API, req *request) reply {
		var params map[string]string
		for _, name := range pathFields {
			if params == nil {
				params = map[string]string{}
			}
			params[name] = req.params[name]
		}
		f, r := req.fields(params)
		if r != nil {
			return *r
		}
		resp, err := op(a.cfg.Transit, req, f)
		if resp != nil {
			if v, ok := resp.Data["key_version"].(int); ok {
				req.ev.KeyVersion = v
			}
		}
		return withUnused(a.respond(resp, err), f)
	}
}

// keyCall adapts a body-less engine method on the request's key.
func keyCall(op func(*transit.Engine, context.Context, string) (*transit.Response, error)) func(*API, *request) reply {
	return func(a *API, req *request) reply {
		if _, r := req.fields(nil); r != nil {
			return *r
		}
		return a.respond(op(a.cfg.Transit, req.ctx, req.key()))
	}
}

// keyFieldsCall adapts an engine method on the request's key and body.
func keyFieldsCall(op func(*transit.Engine, context.Context, string, *transit.Fields) (*transit.Response, error)) func(*API, *request) reply {
	return func(a *API, req *request) reply {
		f, r := req.fields(nil)
		if r != nil {
			return *r
		}
		return withUnused(a.respond(op(a.cfg.Transit, req.ctx, req.key(), f)), f)
	}
}

func (a *API) readKeysConfig(req *request) reply {
	if _, r := req.fields(nil); r != nil {
		return *r
	}
	return a.respond(a.cfg.Transit.ReadKeysConfig())
}

func (a *API) writeKeysConfig(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	return withUnused(a.respond(a.cfg.Transit.WriteKeysConfig(req.ctx, f)), f)
}

// listKeys answers LIST transit/keys with the keys of the request's
// namespace (the root namespace's list leaves namespaced keys out).
func (a *API) listKeys(req *request) reply {
	rep := a.respond(a.cfg.Transit.ListKeys())
	data, ok := rep.data.(map[string]any)
	if !ok {
		return rep
	}
	keys, _ := data["keys"].([]string)
	prefix := access.NamespaceKeyPrefix(req.ns)
	var out []string
	for _, k := range keys {
		switch {
		case prefix != "" && strings.HasPrefix(k, prefix):
			out = append(out, strings.TrimPrefix(k, prefix))
		case prefix == "" && !strings.HasPrefix(k, access.ReservedKeyPrefix):
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return errReply(http.StatusNotFound, "")
	}
	data["keys"] = out
	return rep
}

func (a *API) readKey(req *request) reply {
	resp, err := a.cfg.Transit.ReadKey(req.key())
	return a.respond(flagCompromised(req, resp), err)
}

func (a *API) createKey(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	return withUnused(a.respond(a.cfg.Transit.CreateKey(req.ctx, req.key(), f)), f)
}

func (a *API) deleteKey(req *request) reply {
	return a.respond(a.cfg.Transit.DeleteKey(req.ctx, req.key()))
}

func (a *API) changeState(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	action := req.rt.pattern[strings.LastIndexByte(req.rt.pattern, '/')+1:]
	resp, err := a.cfg.Transit.ChangeState(req.ctx, req.key(), action, f)
	return withUnused(a.respond(flagCompromised(req, resp), err), f)
}

func (a *API) importKey(req *request) reply {
	return keyFieldsCall((*transit.Engine).ImportKey)(a, req)
}

func (a *API) importKeyVersion(req *request) reply {
	return keyFieldsCall((*transit.Engine).ImportKeyVersion)(a, req)
}

func (a *API) wrappingKey(req *request) reply {
	return a.respond(a.cfg.Transit.WrappingKey(req.ctx))
}

// backupKey answers transit/backup/:name, in the format the format
// parameter names (keyraft's by default). A backup for Vault carries the
// key's name as the caller knows it (without the namespace's prefix),
// and the audit event says which format left.
func (a *API) backupKey(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	format, err := f.String("format", "")
	if err != nil {
		return errorFromTransit(err)
	}
	if format != "" {
		if req.ev.Details == nil {
			req.ev.Details = map[string]string{}
		}
		req.ev.Details["format"] = transit.Truncate(format)
	}
	name := strings.TrimPrefix(req.key(), access.NamespaceKeyPrefix(req.ns))
	return withUnused(a.respond(a.cfg.Transit.BackupAs(req.key(), format, name)), f)
}

func (a *API) exportKey(req *request) reply {
	return a.respond(a.cfg.Transit.Export(req.params["type"], req.key(), req.params["version"]))
}

// restoreKey restores a backup under the path's name or, without one,
// under the name inside the backup. That name is a key-name input like
// the path's: the reserved prefix is refused for it too (a backup naming
// ns.prod.pay would otherwise replace prod's key), and the restore then
// uses exactly the name checked; in a namespace the name must be given.
func (a *API) restoreKey(req *request) reply {
	name := req.key()
	if name == "" {
		if req.ns != "" {
			return errReply(http.StatusBadRequest, "in a namespace, restore needs the key name: transit/restore/:name")
		}
		n, r := backupName(req)
		if r != nil {
			return *r
		}
		if strings.HasPrefix(n, access.ReservedKeyPrefix) {
			return errReply(http.StatusBadRequest, "the backup's key name "+quoteName(n)+" starts with "+access.ReservedKeyPrefix+", which is reserved for namespaces; restore it under another name: transit/restore/:name")
		}
		name = n
		req.ev.Key = name
	}
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	return withUnused(a.respond(a.cfg.Transit.Restore(req.ctx, name, f)), f)
}

// random answers transit/random(/:bytes)(/:source): a number is the byte
// count, anything else the source.
func (a *API) random(req *request) reply {
	params := map[string]string{}
	for _, s := range []string{req.params["a"], req.params["b"]} {
		if s == "" {
			continue
		}
		if _, err := strconv.Atoi(s); err == nil {
			params["bytes"] = s
		} else {
			params["source"] = s
		}
	}
	f, r := req.fields(params)
	if r != nil {
		return *r
	}
	resp, err := transit.Random(f)
	return withUnused(a.respond(resp, err), f)
}
