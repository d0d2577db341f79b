package transport

import (
	"errors"
	"net/http"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/transit"
)

// routeAuthCert serves Vault's cert auth method: auth/cert/certs/:name
// (roles: GET, PUT/POST, DELETE; LIST auth/cert/certs) and
// auth/cert/login, which needs no token: the client certificate presented
// on the TLS connection is the credential. ok is false for other paths.
func (a *API) listCertRoles(*request) reply {
	names, err := a.cfg.Access.ListCertRoles()
	if err != nil {
		return a.errorReply(err)
	}
	if len(names) == 0 {
		return errReply(http.StatusNotFound, "")
	}
	return reply{data: map[string]any{"keys": names}}
}

func (a *API) readCertRole(req *request) reply {
	name := req.params["name"]
	r, err := a.cfg.Access.ReadCertRole(name)
	if errors.Is(err, access.ErrCertRoleNotFound) {
		return errReply(http.StatusNotFound, "no certificate role named "+quoteName(name))
	}
	if err != nil {
		return a.errorReply(err)
	}
	return reply{data: map[string]any{
		"certificate": r.Certificate, "allowed_common_names": r.AllowedCommonNames,
		"allowed_dns_sans": r.AllowedDNSSANs, "token_policies": r.Policies,
		"token_ttl": int64(r.TTL / time.Second), "display_name": r.DisplayName,
	}}
}

func (a *API) writeCertRole(req *request) reply {
	role, bad := parseCertRole(req.params["name"], req.body)
	if bad != "" {
		return errReply(http.StatusBadRequest, bad)
	}
	// A role hands out its policies to every matching certificate:
	// writing one needs what creating such a token needs.
	if r := checkGrantablePolicies(req, req.te, role.Policies, a.hasSudo(req, req.te)); r != nil {
		return *r
	}
	err := a.cfg.Access.PutCertRole(req.ctx, *role)
	if errors.Is(err, cluster.ErrInvalidRequest) {
		return errReply(http.StatusBadRequest, trimPkg(err))
	}
	if err != nil {
		return a.errorReply(err)
	}
	return reply{status: http.StatusNoContent}
}

func (a *API) deleteCertRole(req *request) reply {
	if err := a.cfg.Access.DeleteCertRole(req.ctx, req.params["name"]); err != nil {
		return a.errorReply(err)
	}
	return reply{status: http.StatusNoContent}
}

// parseCertRole decodes a role body (Vault's field names; policies and
// ttl as the older aliases of token_policies and token_ttl).
func parseCertRole(name string, body []byte) (*access.CertRole, string) {
	f, err := transit.ParseFields(body)
	if err != nil {
		return nil, err.Error()
	}
	r := &access.CertRole{Name: name}
	if r.Certificate, err = f.String("certificate", ""); err != nil {
		return nil, err.Error()
	}
	if r.DisplayName, err = f.String("display_name", ""); err != nil {
		return nil, err.Error()
	}
	lists := []struct {
		names []string
		into  *[]string
	}{
		{[]string{"allowed_common_names"}, &r.AllowedCommonNames},
		{[]string{"allowed_dns_sans"}, &r.AllowedDNSSANs},
		{[]string{"token_policies", "policies"}, &r.Policies},
	}
	for _, l := range lists {
		for _, n := range l.names {
			v, ok, err := stringList(f, n, maxTokenPolicies)
			if err != nil {
				return nil, err.Error()
			}
			if ok {
				*l.into = v
				break
			}
		}
	}
	for _, n := range []string{"token_ttl", "ttl"} {
		d, set, err := f.Duration(n)
		if err != nil {
			return nil, err.Error()
		}
		if set {
			r.TTL = d
			break
		}
	}
	return r, ""
}

// certLogin answers auth/cert/login with a token whose policies come from
// the role that accepts the connection's client certificate.
func (a *API) certLogin(req *request) reply {
	if a.cfg.Node.Sealed() {
		return errReply(http.StatusServiceUnavailable, "keyraft is sealed")
	}
	var body struct {
		Name string `json:"name"`
	}
	if r := req.decode(&body); r != nil {
		return *r
	}
	if len(req.peerCerts) == 0 {
		return errReply(http.StatusBadRequest, "no client certificate was presented on the TLS connection")
	}
	req.ev.Identity = "cert:" + req.peerCerts[0].Subject.CommonName
	// The event is recorded by the pipeline afterwards, naming the role.
	tok, e, role, err := a.cfg.Access.CertLogin(audit.WithEvent(req.ctx, nil), req.peerCerts, body.Name, a.now())
	switch {
	case errors.Is(err, access.ErrCertNoMatch), errors.Is(err, access.ErrCertRoleNotFound):
		return errReply(http.StatusForbidden, "permission denied: no certificate role accepts this client certificate")
	case err != nil:
		return a.errorReply(err)
	}
	req.ev.Details = map[string]string{"cert_role": role.Name, "common_name": req.peerCerts[0].Subject.CommonName}
	return authReply(req, e, tok, a.now(), nil)
}
