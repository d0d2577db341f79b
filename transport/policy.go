package transport

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/acl"
	"github.com/keyraft/keyraft/cluster"
)

// routePolicies serves Vault's ACL policy API: sys/policies/acl (LIST),
// sys/policies/acl/:name (GET, PUT/POST {"policy": hcl}, DELETE), the old
// sys/policy and sys/policy/:name aliases, and sys/capabilities-self. ok
// is false for a path that is none of these.
// The policy API answers under two names: sys/policies/acl (Vault's) and
// sys/policy (the old one, whose answers also carry "rules").
func policyAlias(req *request) bool { return strings.HasPrefix(req.rt.pattern, "sys/policy") }

func (a *API) listPolicies(req *request) reply {
	names, err := a.cfg.Access.ListPoliciesIn(req.ns)
	if err != nil {
		return a.errorReply(err)
	}
	if policyAlias(req) {
		return reply{data: map[string]any{"keys": names, "policies": names}}
	}
	return reply{data: map[string]any{"keys": names}}
}

func (a *API) readPolicy(req *request) reply {
	name := req.params["name"]
	if name == "root" {
		// Vault answers the root policy with empty rules.
		return policyReply(name, "", policyAlias(req))
	}
	src, _, err := a.cfg.Access.ReadPolicyIn(req.ns, name)
	if errors.Is(err, access.ErrPolicyNotFound) {
		return errReply(http.StatusNotFound, "no policy named "+quoteName(name))
	}
	if err != nil {
		return a.errorReply(err)
	}
	return policyReply(name, src, policyAlias(req))
}

func (a *API) writePolicy(req *request) reply {
	name := req.params["name"]
	var body struct {
		Policy *string `json:"policy"`
		Rules  *string `json:"rules"` // the old sys/policy field
	}
	if r := req.decode(&body); r != nil {
		return *r
	}
	src := body.Policy
	if src == nil {
		src = body.Rules
	}
	if src == nil {
		return errReply(http.StatusBadRequest, "missing \"policy\": the policy's HCL source")
	}
	req.ev.Details = map[string]string{"policy": name}
	err := a.cfg.Access.PutPolicyIn(req.ctx, req.ns, name, *src)
	var pe *acl.ParseError
	switch {
	case errors.As(err, &pe):
		return errReply(http.StatusBadRequest, "failed to parse policy: "+pe.Error())
	case errors.Is(err, access.ErrPolicyBuiltin):
		return errReply(http.StatusBadRequest, "cannot update the root policy")
	case errors.Is(err, cluster.ErrInvalidRequest):
		return errReply(http.StatusBadRequest, trimPkg(err))
	case err != nil:
		return a.errorReply(err)
	}
	return reply{status: http.StatusNoContent}
}

func (a *API) deletePolicy(req *request) reply {
	name := req.params["name"]
	req.ev.Details = map[string]string{"policy": name}
	err := a.cfg.Access.DeletePolicyIn(req.ctx, req.ns, name)
	if errors.Is(err, access.ErrPolicyBuiltin) {
		return errReply(http.StatusBadRequest, "cannot delete the built-in policy "+quoteName(name))
	}
	if err != nil {
		return a.errorReply(err)
	}
	return reply{status: http.StatusNoContent}
}

func policyReply(name, src string, alias bool) reply {
	if alias {
		return reply{data: map[string]any{"name": name, "rules": src}}
	}
	return reply{data: map[string]any{"name": name, "policy": src}}
}

func quoteName(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// capabilitiesSelf serves sys/capabilities-self: what the caller's own
// policies allow on each path of "paths" (a list or a comma-separated
// string, as the vault CLI sends it; "path" too).
func (a *API) capabilitiesSelf(req *request) reply {
	return a.capabilitiesOf(req, req.te)
}

// capabilitiesToken serves sys/capabilities (the token's, by "token") and
// sys/capabilities-accessor (by "accessor"): what another token of the
// caller's namespace may do, for a caller whose policy allows asking.
func (a *API) capabilitiesToken(req *request) reply {
	f, r := req.parsed()
	if r != nil {
		return *r
	}
	byAccessor := strings.HasSuffix(req.path, "-accessor")
	name := map[bool]string{false: "token", true: "accessor"}[byAccessor]
	v, err := f.String(name, "")
	if err != nil || v == "" {
		return errReply(http.StatusBadRequest, "missing "+name)
	}
	var te *access.TokenEntry
	if byAccessor {
		req.detail("accessor", v)
		te, err = a.cfg.Access.LookupAccessor(v)
	} else {
		te, err = a.cfg.Access.LookupToken(v)
	}
	if err == nil && (te.Expired(a.now()) || !req.sameNamespace(te)) {
		err = access.ErrPermissionDenied
	}
	if err != nil {
		return a.tokenGone(err)
	}
	return a.capabilitiesOf(req, te)
}

func (a *API) capabilitiesOf(req *request, te *access.TokenEntry) reply {
	f, r := req.parsed()
	if r != nil {
		return *r
	}
	paths, _, err := stringList(f, "paths", 256)
	if err != nil {
		return errReply(http.StatusBadRequest, err.Error())
	}
	if p, _ := f.String("path", ""); p != "" {
		paths = append(paths, p)
	}
	if len(paths) == 0 || len(paths) > 256 {
		return errReply(http.StatusBadRequest, "\"paths\" must list 1 to 256 paths")
	}
	pols, err := a.cfg.Access.Policies(te.Namespace, te.Policies)
	if err != nil {
		return a.errorReply(err)
	}
	out := map[string]any{}
	var all []string
	for _, path := range paths {
		path = strings.Trim(strings.TrimPrefix(path, "/v1/"), "/")
		caps := capabilitiesOn(pols, path, net.ParseIP(req.ev.RemoteAddr), a)
		out[path] = caps
		all = caps
	}
	if len(paths) == 1 {
		out["capabilities"] = all
	}
	return reply{data: out, topLevel: true}
}

// capabilitiesOn lists what pols grant on path for a request from ip now
// (conditions on context count as failed: there is no request context).
func capabilitiesOn(pols []*acl.Policy, path string, ip net.IP, a *API) []string {
	for _, p := range pols {
		if p == acl.Root {
			return []string{"root"}
		}
	}
	var caps []string
	for _, c := range []string{acl.Create, acl.Read, acl.Update, acl.Patch, acl.Delete, acl.List, acl.Sudo} {
		if acl.Evaluate(pols, acl.Request{Path: path, Capability: c, RemoteIP: ip, Time: a.now()}).Allowed {
			caps = append(caps, c)
		}
	}
	if len(caps) == 0 {
		caps = []string{acl.Deny}
	}
	return caps
}
