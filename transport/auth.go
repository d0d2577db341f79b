package transport

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/acl"
	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/transit"
)

// authState is the API's authorization state: the clock requests are
// judged by (tests replace it).
type authState struct {
	clock func() time.Time
}

// now is the node's clock at request time, in UTC. Expiry of tokens and
// grants is decided here, never inside the state machine.
func (a *API) now() time.Time {
	if a.auth.clock != nil {
		return a.auth.clock().UTC()
	}
	return time.Now().UTC()
}

// SetClock replaces the clock that token and grant expiry are judged by.
// For tests; nil restores the system clock.
func (a *API) SetClock(now func() time.Time) { a.auth.clock = now }

// aclPath is the Vault path of a request (after /v1/, no trailing
// slash). Streaming endpoints build their request without one; their
// event has it.
func (req *request) aclPath() string {
	if req.path != "" {
		return req.path
	}
	p := strings.TrimPrefix(req.ev.Path, "/v1/")
	return strings.TrimSuffix(p, "/")
}

// authorize decides whether te may make req: the capability of the
// method on the request's path, sudo as well on a root-protected path,
// with the request's source address, the node's time and, for transit
// data operations whose policies ask for it, the request's context.
// A denial is a 403 whose message says why in terms of the caller's own
// policies; the audit event gets the same reason.
func (a *API) authorize(req *request, te *access.TokenEntry) *reply {
	pols, err := a.cfg.Access.Policies(te.Namespace, te.Policies)
	if err != nil {
		r := a.errorReply(err)
		return &r
	}
	if len(pols) == 1 && pols[0] == acl.Root {
		return nil // the root policy alone: everything, sudo included, no deny rules
	}
	path := req.aclPath()
	capability := acl.CapabilityFor(req.method, path, true)
	if req.rt.createIfMissing && capability == acl.Update {
		// Vault's existence check: encrypting under a missing key creates it.
		name := access.NamespaceKeyPrefix(req.ns) + req.key()
		if rev, err := a.cfg.Node.Revision("transit/key/" + name); err == nil && rev == 0 {
			capability = acl.Create
		}
	}
	base := acl.Request{Path: path, Capability: capability, RemoteIP: net.ParseIP(req.ev.RemoteAddr), Time: a.now()}
	reqs, r := withContexts(req, pols, base)
	if r != nil {
		return r
	}
	for i, rq := range reqs {
		d := acl.Evaluate(pols, rq)
		if !d.Allowed {
			// A grant fills only a gap: never a deny rule or a
			// condition (source_cidrs, time_window, required_context)
			// that failed.
			if !d.Refused && a.grantFor(req, te, path, capability) != "" {
				continue
			}
			return denied(req, d.Reason, i, len(reqs))
		}
	}
	// The same action under its other paths: a deny rule or a failed
	// condition on any of them refuses (docs/access.md, "One action, one
	// decision").
	for _, alias := range aliasPaths(path) {
		for i, rq := range reqs {
			rq.Path = alias
			if d := acl.Evaluate(pols, rq); d.Refused {
				return denied(req, d.Reason, i, len(reqs))
			}
		}
	}
	if req.rt.auth == sudoAuth {
		// A root-protected path (the row's access): sudo besides the
		// method's capability, as in Vault.
		base.Capability = acl.Sudo
		if d := acl.Evaluate(pols, base); !d.Allowed {
			return denied(req, "sudo is required on "+path+": "+d.Reason, 0, 1)
		}
	}
	return nil
}

// withContexts is the decision's requests: base alone, or, for a transit
// request whose policies have context conditions, one per context the
// engine will use (a batch's items).
func withContexts(req *request, pols []*acl.Policy, base acl.Request) ([]acl.Request, *reply) {
	if !strings.HasPrefix(base.Path, "transit/") || !needsContext(pols) {
		return []acl.Request{base}, nil
	}
	f, r := req.parsed()
	if r != nil {
		return nil, r
	}
	op, _, _ := strings.Cut(strings.TrimPrefix(base.Path, "transit/"), "/")
	ctxs, err := requestContexts(f, op)
	if err != nil {
		r := errorFromTransit(err)
		return nil, &r
	}
	reqs := make([]acl.Request, 0, len(ctxs))
	for _, c := range ctxs {
		rq := base
		rq.Context = c
		reqs = append(reqs, rq)
	}
	return reqs, nil
}

// aliasPaths lists the other paths that name the same action as path:
// the key's path for a data operation whose algorithm, version or size is
// a path suffix (transit/sign/K/sha2-512 is a signature with key K, as
// transit/sign/K is), and the two names of a policy (sys/policy/X and
// sys/policies/acl/X). A request is allowed by its own path, as in Vault,
// and refused by a deny rule or a failed condition on any of them.
func aliasPaths(path string) []string {
	p := strings.Split(path, "/")
	switch {
	case len(p) == 4 && p[0] == "transit" && (p[1] == "sign" || p[1] == "verify" || p[1] == "hmac"):
		return []string{strings.Join(p[:3], "/")}
	case len(p) == 5 && p[0] == "transit" && p[1] == "export":
		return []string{strings.Join(p[:4], "/")}
	case len(p) >= 3 && p[0] == "transit" && (p[1] == "random" || p[1] == "hash"):
		return []string{"transit/" + p[1]}
	case len(p) >= 2 && p[0] == "sys" && p[1] == "policy":
		return []string{strings.Join(append([]string{"sys", "policies", "acl"}, p[2:]...), "/")}
	case len(p) >= 3 && p[0] == "sys" && p[1] == "policies" && p[2] == "acl":
		return []string{strings.Join(append([]string{"sys", "policy"}, p[3:]...), "/")}
	}
	return nil
}

// denied is the 403 of a refused request.
func denied(req *request, reason string, item, items int) *reply {
	if items > 1 {
		reason = "batch_input item " + itoa(item) + ": " + reason
	}
	r := errReply(http.StatusForbidden, "permission denied: "+reason)
	return &r
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// hasSudo reports whether te's policies grant sudo on the request's path
// (the root policy does).
func (a *API) hasSudo(req *request, te *access.TokenEntry) bool {
	pols, err := a.cfg.Access.Policies(te.Namespace, te.Policies)
	if err != nil {
		return false
	}
	return acl.Evaluate(pols, acl.Request{Path: req.aclPath(), Capability: acl.Sudo,
		RemoteIP: net.ParseIP(req.ev.RemoteAddr), Time: a.now()}).Allowed
}

func needsContext(pols []*acl.Policy) bool {
	for _, p := range pols {
		if p != acl.Root && p.NeedsContext() {
			return true
		}
	}
	return false
}

// maxContextPairs bounds what one request context may hold.
const maxContextPairs = 64

// requestContexts returns the encryption context of a transit request
// for operation op ("encrypt", "sign", …), one per batch_input item or one
// for the request: the key/value pairs of the fields the engine reads for
// op ("context", and "associated_data" where op uses it), each base64 of
// a JSON object of strings (AWS KMS's encryption context, in Vault's
// base64 fields). It reads the request's decoded body through the same
// getters the engine uses, from the same place (batch items only for the
// operations that take a batch), so the values a condition checks are the
// ones the engine then uses. A value that is not such an object
// contributes nothing, so a required_context condition fails on it; two
// fields that give one key different values are a 400.
func requestContexts(f *transit.Fields, op string) ([]map[string]string, error) {
	inputs, err := conditionInputs(f, op)
	if err != nil {
		return nil, err
	}
	ctxs := make([]map[string]string, 0, len(inputs))
	for i, in := range inputs {
		m := map[string]string{}
		for _, b := range in {
			obj, _ := contextObject(b)
			for k, v := range obj {
				if old, dup := m[k]; dup && old != v {
					where := ""
					if len(inputs) > 1 {
						where = " in batch_input item " + itoa(i)
					}
					return nil, &transit.Error{Status: http.StatusBadRequest,
						Msg: "context and associated_data give " + strconv.Quote(transit.Truncate(k)) + " different values" + where}
				}
				m[k] = v
			}
		}
		ctxs = append(ctxs, m)
	}
	return ctxs, nil
}

// conditionShape is, per transit data operation, where the engine reads
// the fields a context condition checks: from batch_input items (when
// the operation takes a batch) and which fields. An operation not listed
// reads none, so a required_context condition on it never holds.
var conditionShape = map[string]struct {
	batch  bool
	fields []string
}{
	"encrypt": {true, []string{"context", "associated_data"}},
	"decrypt": {true, []string{"context", "associated_data"}},
	"rewrap":  {true, []string{"context", "associated_data"}},
	"datakey": {false, []string{"context", "associated_data"}},
	"sign":    {true, []string{"context"}},
	"verify":  {true, []string{"context"}},
}

// conditionInputs is what requestContexts reads for op, per item
// (batch_input's, or the request as one): the raw values of the fields
// the engine uses, through the getters it reads them with.
func conditionInputs(f *transit.Fields, op string) ([][][]byte, error) {
	shape := conditionShape[op]
	items := []*transit.Fields{f}
	if shape.batch {
		batch, isBatch, err := f.Items("batch_input")
		if err != nil {
			return nil, err
		}
		if isBatch {
			items = batch
		}
	}
	out := make([][][]byte, 0, len(items))
	for _, it := range items {
		var vals [][]byte
		for _, name := range shape.fields {
			b, err := it.PeekBase64(name)
			if err != nil {
				return nil, err
			}
			vals = append(vals, b)
		}
		out = append(out, vals)
	}
	return out, nil
}

// contextObject decodes a context as a JSON object of strings, as
// strictly as a request body (a duplicate key or a case variant makes it
// no context at all); ok is false when it is not one.
func contextObject(b []byte) (map[string]string, bool) {
	if len(b) == 0 {
		return nil, false
	}
	f, err := transit.ParseFields(b)
	if err != nil {
		return nil, false
	}
	obj := map[string]string{}
	for _, k := range f.Names() {
		raw, _, _ := f.Raw(k)
		var v string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
			return nil, false
		}
		obj[k] = v
	}
	if len(obj) == 0 || len(obj) > maxContextPairs {
		return nil, false
	}
	return obj, true
}

// checkToken refuses an entry that is expired at the node's time or bound
// to networks the request does not come from.
func (a *API) checkToken(req *request, te *access.TokenEntry) *reply {
	if r := a.checkNamespace(req, te); r != nil {
		return r
	}
	if te.Expired(a.now()) {
		r := errReply(http.StatusForbidden, "permission denied: the token has expired")
		return &r
	}
	if len(te.BoundCIDRs) > 0 && !te.AllowsAddr(net.ParseIP(req.ev.RemoteAddr)) {
		r := errReply(http.StatusForbidden, "permission denied: the token may not be used from this address (bound_cidrs)")
		return &r
	}
	return nil
}

// spendUse consumes one use of a token with num_uses through Raft before
// the request is served; the last use deletes the token. The change
// carries no audit event of its own: the request's event records it.
func (a *API) spendUse(req *request) *reply {
	err := a.cfg.Access.UseToken(audit.WithEvent(req.ctx, nil), req.token)
	if errors.Is(err, access.ErrPermissionDenied) {
		r := errReply(http.StatusForbidden, "permission denied: invalid token")
		return &r
	}
	if err != nil {
		r := a.errorReply(err)
		return &r
	}
	return nil
}
