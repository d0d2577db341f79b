package transport

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/transit"
)

// Namespaces (X-Vault-Namespace, as in Vault). A request names one; its
// token must belong to it (a root token may act in any), its policies are
// that namespace's, and the keys it names are that namespace's: the
// transit engine stores them as access.NamespaceKeyPrefix(ns)+name, and
// the root namespace may not use that prefix. Inside a namespace only
// transit/, the policy API, sys/capabilities-self and auth/token/ exist;
// the operator paths (seal, raft, audit, grants, break-glass, cert auth)
// belong to the root namespace.

// namespaceFrom reads the request's namespace: the X-Vault-Namespace
// header, without surrounding slashes ("" or "root": the root namespace).
func namespaceFrom(r *http.Request) string {
	ns := strings.Trim(strings.TrimSpace(r.Header.Get("X-Vault-Namespace")), "/")
	if ns == "root" {
		return ""
	}
	return ns
}

// checkNamespace refuses a request whose namespace does not exist or is
// not the token's. A root token of the root namespace may act in any.
func (a *API) checkNamespace(req *request, te *access.TokenEntry) *reply {
	if req.ns != "" {
		ok, err := a.cfg.Access.NamespaceExists(req.ns)
		if err != nil {
			r := a.errorReply(err)
			return &r
		}
		if !ok {
			r := errReply(http.StatusBadRequest, "no namespace named "+quoteName(req.ns))
			return &r
		}
		if req.ev.Details == nil {
			req.ev.Details = map[string]string{}
		}
		req.ev.Details["namespace"] = req.ns
	}
	// A token whose namespace was deleted (and maybe created again: a
	// new id) is no token at all.
	if live, err := a.cfg.Access.TokenNamespaceLive(te); err != nil {
		r := a.errorReply(err)
		return &r
	} else if !live {
		r := errReply(http.StatusForbidden, "permission denied: invalid token")
		return &r
	}
	// Only a root token of the root namespace acts in every namespace: a
	// root-policy token some namespace holds (made before such tokens
	// were refused) stays in its own.
	if te.Namespace != req.ns && !(te.Namespace == "" && slices.Contains(te.Policies, "root")) {
		r := errReply(http.StatusForbidden, "permission denied: the token belongs to another namespace")
		return &r
	}
	return nil
}

// sameNamespace reports whether a token the request names (lookup,
// renew, revoke) is of the request's namespace, so that one namespace's
// tokens cannot be looked up or revoked from another.
func (req *request) sameNamespace(target *access.TokenEntry) bool {
	return target.Namespace == req.ns
}

// The namespace API: LIST sys/namespaces, and sys/namespaces/:name (GET,
// PUT/POST creates, DELETE), in the root namespace only. DELETE revokes
// the namespace's tokens in the same commit and is refused while the
// namespace holds keys (access.Service.DeleteNamespace).

func (a *API) listNamespaces(*request) reply {
	names, err := a.cfg.Access.ListNamespaces()
	if err != nil {
		return a.errorReply(err)
	}
	if len(names) == 0 {
		return errReply(http.StatusNotFound, "")
	}
	return reply{data: map[string]any{"keys": names}}
}

func (a *API) readNamespace(req *request) reply {
	name := req.params["name"]
	ok, err := a.cfg.Access.NamespaceExists(name)
	if err != nil {
		return a.errorReply(err)
	}
	if !ok {
		return errReply(http.StatusNotFound, "no namespace named "+quoteName(name))
	}
	return reply{data: map[string]any{"path": name + "/", "id": name}}
}

func (a *API) createNamespace(req *request) reply {
	name := req.params["name"]
	err := a.cfg.Access.CreateNamespace(req.ctx, name)
	if errors.Is(err, cluster.ErrInvalidRequest) {
		return errReply(http.StatusBadRequest, trimPkg(err))
	}
	if err != nil {
		return a.errorReply(err)
	}
	return reply{data: map[string]any{"path": name + "/", "id": name}}
}

func (a *API) deleteNamespace(req *request) reply {
	name := req.params["name"]
	err := a.cfg.Access.DeleteNamespace(req.ctx, name)
	if errors.Is(err, access.ErrNamespaceNotFound) {
		return errReply(http.StatusNotFound, "no namespace named "+quoteName(name))
	}
	if errors.Is(err, access.ErrNamespaceNotEmpty) || errors.Is(err, cluster.ErrInvalidRequest) {
		return errReply(http.StatusBadRequest, trimPkg(err))
	}
	if err != nil {
		return a.errorReply(err)
	}
	return reply{status: http.StatusNoContent}
}

// backupName is the key name inside a restore's backup, or the 400 of a
// body that has none.
func backupName(req *request) (string, *reply) {
	bad := func(msg string) (string, *reply) {
		r := errReply(http.StatusBadRequest, msg)
		return "", &r
	}
	f, r := req.parsed()
	if r != nil {
		return "", r
	}
	raw, err := f.PeekBase64("backup")
	if err != nil {
		r := errorFromTransit(err)
		return "", &r
	}
	if len(raw) == 0 {
		return bad("missing backup")
	}
	defer clear(raw)
	name, err := transit.BackupKeyName(raw, time.Now())
	if err != nil {
		return bad("invalid backup: not a keyraft or Vault transit key backup")
	}
	if name == "" {
		return bad("invalid backup: it names no key; restore it with transit/restore/:name")
	}
	return name, nil
}
