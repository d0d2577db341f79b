package transport

import (
	"net/http"
	"strings"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/transit"
)

// serve runs the pipeline for a request whose row is known: namespace →
// authenticate and authorize (per the row's access) → lease check and
// batch budget (transit rows) → the row's handler. ServeHTTP then records
// the answer and sends it. Nothing here depends on a handler remembering
// a step: the row says which apply.
func (a *API) serve(req *request) reply {
	rt := req.rt
	if req.ns != "" && !rt.namespaced {
		return errReply(http.StatusBadRequest, req.path+" is not available in a namespace; send it without X-Vault-Namespace")
	}
	if k := rt.key; k != "" && req.params[k] != "" {
		// Every event of a request on a key names it, a denial's too
		// (keyraft audit query -key).
		req.ev.Key = access.NamespaceKeyPrefix(req.ns) + req.params[k]
	}
	switch rt.auth {
	case public:
		if rt.unsealed && a.cfg.Node.Sealed() {
			return errReply(http.StatusServiceUnavailable, "keyraft is sealed")
		}
	default:
		te, r := a.authenticate(req)
		if r != nil {
			return *r
		}
		req.te = te
	}
	if rt.committed != 0 {
		req.ev.Status = rt.committed
	}
	if len(rt.sensitive) > 0 {
		req.hmacFields(rt.sensitive)
	}
	if !rt.lease {
		return rt.handler(a, req)
	}
	// Key use is served from the local state only while this node is in
	// touch with the leader (see cluster.Node.CheckLease).
	if err := a.cfg.Node.CheckLease(); err != nil {
		return errReply(http.StatusServiceUnavailable, trimPkg(err))
	}
	return a.withInflight(req, req.te.Accessor, func() reply {
		return a.inNamespace(req, func() reply { return rt.handler(a, req) })
	})
}

// inNamespace serves a transit request in the request's namespace: the
// key its path names is mapped into the namespace (the engine stores a
// namespace's keys as access.NamespaceKeyPrefix(ns)+name; the root
// namespace may not use that prefix), and the name in the answer mapped
// back.
func (a *API) inNamespace(req *request, serve func() reply) reply {
	prefix := access.NamespaceKeyPrefix(req.ns)
	if k := req.rt.key; k != "" && req.params[k] != "" {
		name := req.params[k]
		if req.ns == "" && strings.HasPrefix(name, access.ReservedKeyPrefix) {
			return errReply(http.StatusBadRequest, "key names starting with "+access.ReservedKeyPrefix+" are reserved for namespaces")
		}
		req.params[k] = prefix + name
		req.ev.Key = prefix + name
	}
	rep := serve()
	if data, ok := rep.data.(map[string]any); ok && prefix != "" {
		if name, ok := data["name"].(string); ok {
			data["name"] = strings.TrimPrefix(name, prefix)
		}
	}
	return rep
}

// detail adds a detail to the request's audit event, keeping those
// already there (the namespace's).
func (req *request) detail(k, v string) {
	if req.ev.Details == nil {
		req.ev.Details = map[string]string{}
	}
	req.ev.Details[k] = v
}

// key is the transit key the request's path names (in its namespace).
func (req *request) key() string { return req.params[req.rt.key] }

func unsupportedOp() reply { return errReply(http.StatusMethodNotAllowed, "unsupported operation") }

// parsed is the request body decoded, once: every reader of the body (the
// policy's conditions, the handler, the audit HMACs) reads these Fields,
// so what a condition checks is exactly what the engine uses.
func (req *request) parsed() (*transit.Fields, *reply) {
	if req.f == nil && req.fErr == nil {
		f, err := transit.ParseFields(req.body)
		if err != nil {
			r := errorFromTransit(err)
			req.fErr = &r
		} else {
			f.SetMaxItems(req.maxItems)
			req.f = f
		}
	}
	return req.f, req.fErr
}

// fields is the decoded body with the query parameters (for GET) and the
// path parameters added, as Vault merges all three.
func (req *request) fields(pathParams map[string]string) (*transit.Fields, *reply) {
	f, r := req.parsed()
	if r != nil {
		return nil, r
	}
	if req.method == http.MethodGet || req.method == "LIST" {
		for k, v := range req.query {
			if k != "list" && len(v) > 0 && !f.Has(k) {
				f.Set(k, v[0])
			}
		}
	}
	for k, v := range pathParams {
		if v != "" {
			f.Set(k, v)
		}
	}
	req.hmacSensitive(f)
	return f, nil
}

// decode fills the struct v points to from the decoded body, with exact
// keys (transit.Fields.Decode); the reply is a 400 naming the field.
func (req *request) decode(v any) *reply {
	f, r := req.parsed()
	if r != nil {
		return r
	}
	if err := f.Decode(v); err != nil {
		r := errorFromTransit(err)
		return &r
	}
	return nil
}

// hmacSensitiveField adds the HMAC of one more field that only this
// endpoint treats as secret (a restore's backup).
func (req *request) hmacSensitiveField(f *transit.Fields, name string) {
	if req.hmac == nil || !f.Has(name) {
		return
	}
	if v, err := f.String(name, ""); err == nil {
		if h, ok := req.hmac([]byte(v)); ok {
			if req.ev.HMACs == nil {
				req.ev.HMACs = map[string]string{}
			}
			req.ev.HMACs[name] = h
		}
	}
}

// hmacSensitive puts the HMAC of every sensitive field into the audit
// event, so investigators can match a known value (keyraft audit hash)
// without the log holding it.
func (req *request) hmacSensitive(f *transit.Fields) {
	if req.hmac == nil {
		return
	}
	f.Sensitive(func(name, value string) {
		if h, ok := req.hmac([]byte(value)); ok {
			if req.ev.HMACs == nil {
				req.ev.HMACs = map[string]string{}
			}
			req.ev.HMACs[name] = h
		}
	})
}

func errorFromTransit(err error) reply {
	if te, ok := err.(*transit.Error); ok {
		return errReply(te.Status, te.Msg)
	}
	return errReply(http.StatusBadRequest, err.Error())
}

func (a *API) respond(resp *transit.Response, err error) reply {
	if err != nil {
		return a.errorReply(err)
	}
	if resp.Data == nil {
		return reply{status: http.StatusNoContent}
	}
	if len(resp.Warnings) == 0 {
		resp.Warnings = nil
	}
	return reply{status: resp.Status, data: resp.Data, warnings: resp.Warnings}
}

// withUnused adds Vault's warning about parameters the endpoint ignored.
func withUnused(rep reply, f *transit.Fields) reply {
	if u := f.Unused(); len(u) > 0 && rep.data != nil {
		rep.warnings = append(rep.warnings, "Endpoint ignored these unrecognized parameters: ["+strings.Join(u, " ")+"]")
	}
	return rep
}

// hmacFields records the HMACs of the row's sensitive body fields.
func (req *request) hmacFields(names []string) {
	f, r := req.parsed()
	if r != nil {
		return
	}
	for _, name := range names {
		req.hmacSensitiveField(f, name)
	}
}
