package transport

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/keyraft/keyraft/transit"
)

// route dispatches one request. Paths under sys/ and auth/ are the node's;
// transit/ is the key engine, always mounted.
func (a *API) route(req *request) reply {
	parts := strings.Split(req.path, "/")
	req.ev.Operation = operationName(parts)
	if r := nsGate(req, parts); r != nil { // transport/auth_namespace.go
		return *r
	}
	switch parts[0] {
	case "sys":
		return a.routeSys(req, parts[1:])
	case "auth":
		return a.routeAuth(req, parts[1:])
	case "transit":
		te, r := a.authenticate(req)
		if r != nil {
			return *r
		}
		// Key use is served from the local state only while this node is
		// in touch with the leader (see cluster.Node.CheckLease).
		if err := a.cfg.Node.CheckLease(); err != nil {
			return errReply(http.StatusServiceUnavailable, trimPkg(err))
		}
		return a.withInflight(req, te.Accessor, func() reply {
			return a.nsTransit(req, parts[1:], a.routeTransit) // keys of the request's namespace
		})
	}
	return errReply(http.StatusNotFound, "unsupported path")
}

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

func (a *API) routeTransit(req *request, p []string) reply {
	e := a.cfg.Transit
	ctx := req.ctx
	at := func(i int) string {
		if i < len(p) {
			return p[i]
		}
		return ""
	}
	if len(p) == 0 || p[0] == "" {
		return errReply(http.StatusNotFound, "unsupported path")
	}
	op, name := p[0], at(1)
	if name != "" {
		req.ev.Key = name
	}
	var params map[string]string
	switch op {
	case "keys":
		switch {
		case len(p) == 1:
			if req.method != "LIST" {
				return unsupportedOp()
			}
			return a.respond(e.ListKeys())
		case len(p) == 2:
			switch req.method {
			case http.MethodGet:
				resp, err := e.ReadKey(name)
				return a.respond(flagCompromised(req, resp), err)
			case http.MethodPost:
				f, r := req.fields(nil)
				if r != nil {
					return *r
				}
				return withUnused(a.respond(e.CreateKey(ctx, name, f)), f)
			case http.MethodDelete:
				req.ev.Status = http.StatusNoContent // what the committed delete answers
				return a.respond(e.DeleteKey(ctx, name))
			}
			return unsupportedOp()
		case len(p) == 3 && slices.Contains(transit.LifecycleActions, p[2]):
			if req.method != http.MethodPost {
				return unsupportedOp()
			}
			f, r := req.fields(nil)
			if r != nil {
				return *r
			}
			resp, err := e.ChangeState(ctx, name, p[2], f)
			return withUnused(a.respond(flagCompromised(req, resp), err), f)
		case len(p) == 3 && (p[2] == "import" || p[2] == "import_version"): // BYOK: transit/import.go
			if req.method != http.MethodPost {
				return unsupportedOp()
			}
			f, r := req.fields(nil)
			if r != nil {
				return *r
			}
			req.ev.Status = http.StatusNoContent // what the committed import answers
			if p[2] == "import" {
				return withUnused(a.respond(e.ImportKey(ctx, name, f)), f)
			}
			return withUnused(a.respond(e.ImportKeyVersion(ctx, name, f)), f)
		case len(p) == 3 && (p[2] == "rotate" || p[2] == "config" || p[2] == "trim"):
			if req.method != http.MethodPost {
				return unsupportedOp()
			}
			f, r := req.fields(nil)
			if r != nil {
				return *r
			}
			switch p[2] {
			case "rotate":
				return a.respond(e.RotateKey(ctx, name))
			case "config":
				return withUnused(a.respond(e.ConfigKey(ctx, name, f)), f)
			case "trim":
				return withUnused(a.respond(e.TrimKey(ctx, name, f)), f)
			}
		}
		return errReply(http.StatusNotFound, "unsupported path")
	case "wrapping_key": // BYOK: transit/import_wrapping.go
		if req.method != http.MethodGet {
			return unsupportedOp()
		}
		if len(p) != 1 {
			return errReply(http.StatusNotFound, "unsupported path")
		}
		return a.respond(e.WrappingKey(ctx))
	case "backup":
		if req.method != http.MethodGet {
			return unsupportedOp()
		}
		if len(p) != 2 {
			return errReply(http.StatusNotFound, "unsupported path: use transit/backup/:name")
		}
		return a.respond(e.Backup(name))
	case "restore":
		if req.method != http.MethodPost {
			return unsupportedOp()
		}
		if len(p) > 2 {
			return errReply(http.StatusNotFound, "unsupported path: use transit/restore(/:name)")
		}
		f, r := req.fields(nil)
		if r != nil {
			return *r
		}
		req.hmacSensitiveField(f, "backup")
		req.ev.Status = http.StatusNoContent // what the committed restore answers
		return withUnused(a.respond(e.Restore(ctx, name, f)), f)
	case "export":
		if req.method != http.MethodGet {
			return unsupportedOp()
		}
		if len(p) < 3 || len(p) > 4 {
			return errReply(http.StatusNotFound, "unsupported path: use transit/export/:type/:name(/:version)")
		}
		req.ev.Key = p[2]
		return a.respond(e.Export(p[1], p[2], at(3)))
	case "random":
		params = map[string]string{}
		for _, s := range p[1:] {
			if _, err := strconv.Atoi(s); err == nil {
				params["bytes"] = s
			} else {
				params["source"] = s
			}
		}
		req.ev.Key = ""
	case "hash":
		params = map[string]string{"algorithm": at(1)}
		req.ev.Key = ""
	case "sign", "verify":
		params = map[string]string{"hash_algorithm": at(2)}
	case "hmac":
		params = map[string]string{"algorithm": at(2)}
	case "datakey":
		req.ev.Key = at(2)
		if at(2) == "" {
			return errReply(http.StatusNotFound, "unsupported path: use transit/datakey/plaintext|wrapped/:name")
		}
	}
	maxParts, known := dataOpParts[op]
	if !known || len(p) > maxParts || (op != "random" && op != "hash" && name == "") {
		return errReply(http.StatusNotFound, "unsupported path")
	}
	if req.method != http.MethodPost {
		return unsupportedOp()
	}
	f, r := req.fields(params)
	if r != nil {
		return *r
	}
	var resp *transit.Response
	var err error
	switch op {
	case "encrypt":
		resp, err = e.Encrypt(ctx, name, f)
	case "decrypt":
		resp, err = e.Decrypt(ctx, name, f)
	case "rewrap":
		resp, err = e.Rewrap(ctx, name, f)
	case "datakey":
		resp, err = e.DataKey(ctx, name, at(2), f)
	case "sign":
		resp, err = e.Sign(ctx, name, f)
	case "verify":
		resp, err = e.Verify(ctx, name, f)
	case "hmac":
		resp, err = e.HMAC(ctx, name, f)
	case "random":
		resp, err = transit.Random(f)
	case "hash":
		resp, err = transit.Hash(f)
	}
	if resp != nil {
		if v, ok := resp.Data["key_version"].(int); ok {
			req.ev.KeyVersion = v
		}
	}
	return withUnused(a.respond(resp, err), f)
}

// dataOpParts is how many path segments each data operation takes
// (e.g. sign/:name/:hash_algorithm is 3).
var dataOpParts = map[string]int{
	"encrypt": 2, "decrypt": 2, "rewrap": 2, "datakey": 3,
	"sign": 3, "verify": 3, "hmac": 3, "random": 3, "hash": 2,
}
