package transport

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/keyraft/keyraft/acl"
	"github.com/keyraft/keyraft/cluster"
)

// routePolicies serves Vault's ACL policy API: sys/policies/acl (LIST),
// sys/policies/acl/:name (GET, PUT/POST {"policy": hcl}, DELETE), the old
// sys/policy and sys/policy/:name aliases, and sys/capabilities-self. ok
// is false for a path that is none of these.
func (a *API) routePolicies(req *request, p []string) (reply, bool) {
	var name string
	alias := false
	switch {
	case len(p) >= 2 && p[0] == "policies" && p[1] == "acl":
		if len(p) > 3 {
			return errReply(http.StatusNotFound, "unsupported path: use sys/policies/acl/:name"), true
		}
		if len(p) == 3 {
			name = p[2]
		}
	case p[0] == "policy":
		alias = true
		if len(p) > 2 {
			return errReply(http.StatusNotFound, "unsupported path: use sys/policy/:name"), true
		}
		if len(p) == 2 {
			name = p[1]
		}
	case len(p) == 1 && p[0] == "capabilities-self":
		return a.capabilitiesSelf(req), true
	default:
		return reply{}, false
	}
	if _, r := a.authenticate(req); r != nil {
		return *r, true
	}
	n := a.cfg.Node
	if name == "" {
		if req.method != "LIST" && !(alias && req.method == http.MethodGet) {
			return unsupportedOp(), true
		}
		names, err := n.ListPoliciesIn(req.ns)
		if err != nil {
			return a.errorReply(err), true
		}
		if alias {
			return reply{data: map[string]any{"keys": names, "policies": names}}, true
		}
		return reply{data: map[string]any{"keys": names}}, true
	}
	switch req.method {
	case http.MethodGet:
		if name == "root" {
			// Vault answers the root policy with empty rules.
			return policyReply(name, "", alias), true
		}
		src, _, err := n.ReadPolicyIn(req.ns, name)
		if errors.Is(err, cluster.ErrPolicyNotFound) {
			return errReply(http.StatusNotFound, "no policy named "+quoteName(name)), true
		}
		if err != nil {
			return a.errorReply(err), true
		}
		return policyReply(name, src, alias), true
	case http.MethodPost:
		var body struct {
			Policy *string `json:"policy"`
			Rules  *string `json:"rules"` // the old sys/policy field
		}
		if r := req.decode(&body); r != nil {
			return *r, true
		}
		src := body.Policy
		if src == nil {
			src = body.Rules
		}
		if src == nil {
			return errReply(http.StatusBadRequest, "missing \"policy\": the policy's HCL source"), true
		}
		req.ev.Details = map[string]string{"policy": name}
		req.ev.Status = http.StatusNoContent
		err := n.PutPolicyIn(req.ctx, req.ns, name, *src)
		var pe *acl.ParseError
		switch {
		case errors.As(err, &pe):
			return errReply(http.StatusBadRequest, "failed to parse policy: "+pe.Error()), true
		case errors.Is(err, cluster.ErrPolicyBuiltin):
			return errReply(http.StatusBadRequest, "cannot update the root policy"), true
		case errors.Is(err, cluster.ErrInvalidRequest):
			return errReply(http.StatusBadRequest, trimPkg(err)), true
		case err != nil:
			return a.errorReply(err), true
		}
		return reply{status: http.StatusNoContent}, true
	case http.MethodDelete:
		req.ev.Details = map[string]string{"policy": name}
		req.ev.Status = http.StatusNoContent
		err := n.DeletePolicyIn(req.ctx, req.ns, name)
		if errors.Is(err, cluster.ErrPolicyBuiltin) {
			return errReply(http.StatusBadRequest, "cannot delete the built-in policy "+quoteName(name)), true
		}
		if err != nil {
			return a.errorReply(err), true
		}
		return reply{status: http.StatusNoContent}, true
	}
	return unsupportedOp(), true
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

// capabilitiesSelf answers sys/capabilities-self: for each of "paths" (or
// "path"), the capabilities the caller's own policies grant there now.
func (a *API) capabilitiesSelf(req *request) reply {
	if req.method != http.MethodPost {
		return unsupportedOp()
	}
	te, r := a.authenticate(req)
	if r != nil {
		return *r
	}
	var body struct {
		Paths []string `json:"paths"`
		Path  string   `json:"path"`
	}
	if r := req.decode(&body); r != nil {
		return *r
	}
	if body.Path != "" {
		body.Paths = append(body.Paths, body.Path)
	}
	if len(body.Paths) == 0 || len(body.Paths) > 256 {
		return errReply(http.StatusBadRequest, "\"paths\" must list 1 to 256 paths")
	}
	pols, err := a.policies(te.Namespace, te.Policies)
	if err != nil {
		return a.errorReply(err)
	}
	out := map[string]any{}
	var all []string
	for _, path := range body.Paths {
		path = strings.Trim(strings.TrimPrefix(path, "/v1/"), "/")
		caps := capabilitiesOn(pols, path, net.ParseIP(req.ev.RemoteAddr), a)
		out[path] = caps
		all = caps
	}
	if len(body.Paths) == 1 {
		out["capabilities"] = all
	}
	return reply{data: out}
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
