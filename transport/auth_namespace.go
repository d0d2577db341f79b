package transport

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/transit"
)

// Namespaces (X-Vault-Namespace, as in Vault). A request names one; its
// token must belong to it (a root token may act in any), its policies are
// that namespace's, and the keys it names are that namespace's: the
// transit engine stores them as cluster.NamespaceKeyPrefix(ns)+name, and
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
func (a *API) checkNamespace(req *request, te *cluster.TokenEntry) *reply {
	if req.ns != "" {
		ok, err := a.cfg.Node.NamespaceExists(req.ns)
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
	if live, err := a.cfg.Node.TokenNamespaceLive(te); err != nil {
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
func (req *request) sameNamespace(target *cluster.TokenEntry) bool {
	return target.Namespace == req.ns
}

// nsGate refuses, inside a namespace, the paths that exist only in the
// root namespace.
func nsGate(req *request, parts []string) *reply {
	if req.ns == "" {
		return nil
	}
	path := strings.Join(parts, "/")
	switch {
	case parts[0] == "transit", strings.HasPrefix(path, "auth/token/"),
		path == "sys/policies/acl", strings.HasPrefix(path, "sys/policies/acl/"),
		path == "sys/policy", strings.HasPrefix(path, "sys/policy/"), path == "sys/capabilities-self",
		// Status paths answer the same in every namespace.
		path == "sys/health", path == "sys/seal-status", path == "sys/leader":
		return nil
	}
	r := errReply(http.StatusBadRequest, path+" is not available in a namespace; send it without X-Vault-Namespace")
	return &r
}

// transitKeyIndex is where a transit path (after "transit/") names its
// key, or -1.
func transitKeyIndex(p []string) int {
	if len(p) < 2 {
		return -1
	}
	switch p[0] {
	case "keys", "backup", "restore", "encrypt", "decrypt", "rewrap", "sign", "verify", "hmac":
		return 1
	case "export", "datakey":
		if len(p) >= 3 {
			return 2
		}
	}
	return -1
}

// nsTransit serves a transit request in the request's namespace: the key
// name it names is mapped into the namespace, and key names in the answer
// mapped back; key lists show only the namespace's keys. In the root
// namespace, names with the reserved prefix are refused and namespaced
// keys are left out of lists.
func (a *API) nsTransit(req *request, p []string, serve func(*request, []string) reply) reply {
	prefix := cluster.NamespaceKeyPrefix(req.ns)
	if i := transitKeyIndex(p); i >= 0 && p[i] != "" {
		if req.ns == "" && strings.HasPrefix(p[i], cluster.ReservedKeyPrefix) {
			return errReply(http.StatusBadRequest, "key names starting with "+cluster.ReservedKeyPrefix+" are reserved for namespaces")
		}
		p = slices.Clone(p)
		p[i] = prefix + p[i]
	} else if len(p) == 1 && p[0] == "restore" {
		if req.ns != "" {
			return errReply(http.StatusBadRequest, "in a namespace, restore needs the key name: transit/restore/:name")
		}
		// The name comes from the backup: it is a key-name input like
		// the path's, so the reserved prefix is refused here too (a
		// backup naming ns.prod.pay would otherwise replace prod's key),
		// and the restore then uses exactly the name checked.
		name, r := backupName(req)
		if r != nil {
			return *r
		}
		if strings.HasPrefix(name, cluster.ReservedKeyPrefix) {
			return errReply(http.StatusBadRequest, "the backup's key name "+quoteName(name)+" starts with "+cluster.ReservedKeyPrefix+", which is reserved for namespaces; restore it under another name: transit/restore/:name")
		}
		p = []string{"restore", name}
	}
	rep := serve(req, p)
	data, ok := rep.data.(map[string]any)
	if !ok {
		return rep
	}
	if name, ok := data["name"].(string); ok && prefix != "" {
		data["name"] = strings.TrimPrefix(name, prefix)
	}
	if keys, ok := data["keys"].([]string); ok && len(p) == 1 && p[0] == "keys" {
		var out []string
		for _, k := range keys {
			switch {
			case prefix != "" && strings.HasPrefix(k, prefix):
				out = append(out, strings.TrimPrefix(k, prefix))
			case prefix == "" && !strings.HasPrefix(k, cluster.ReservedKeyPrefix):
				out = append(out, k)
			}
		}
		if len(out) == 0 {
			return errReply(http.StatusNotFound, "")
		}
		data["keys"] = out
	}
	return rep
}

// routeNamespaces serves sys/namespaces (LIST) and sys/namespaces/:name
// (GET, PUT/POST creates, DELETE), in the root namespace only. DELETE
// revokes the namespace's tokens in the same commit and is refused while
// the namespace holds keys (cluster.Node.DeleteNamespace).
func (a *API) routeNamespaces(req *request, p []string) (reply, bool) {
	if len(p) == 0 || p[0] != "namespaces" || len(p) > 2 {
		return reply{}, false
	}
	if _, r := a.authenticate(req); r != nil {
		return *r, true
	}
	n := a.cfg.Node
	if len(p) == 1 {
		if req.method != "LIST" {
			return unsupportedOp(), true
		}
		names, err := n.ListNamespaces()
		if err != nil {
			return a.errorReply(err), true
		}
		if len(names) == 0 {
			return errReply(http.StatusNotFound, ""), true
		}
		return reply{data: map[string]any{"keys": names}}, true
	}
	name := p[1]
	switch req.method {
	case http.MethodGet:
		ok, err := n.NamespaceExists(name)
		if err != nil {
			return a.errorReply(err), true
		}
		if !ok {
			return errReply(http.StatusNotFound, "no namespace named "+quoteName(name)), true
		}
		return reply{data: map[string]any{"path": name + "/", "id": name}}, true
	case http.MethodPost:
		err := n.CreateNamespace(req.ctx, name)
		if errors.Is(err, cluster.ErrInvalidRequest) {
			return errReply(http.StatusBadRequest, trimPkg(err)), true
		}
		if err != nil {
			return a.errorReply(err), true
		}
		return reply{data: map[string]any{"path": name + "/", "id": name}}, true
	case http.MethodDelete:
		req.ev.Status = http.StatusNoContent
		err := n.DeleteNamespace(req.ctx, name)
		if errors.Is(err, cluster.ErrNamespaceNotFound) {
			return errReply(http.StatusNotFound, "no namespace named "+quoteName(name)), true
		}
		if errors.Is(err, cluster.ErrNamespaceNotEmpty) || errors.Is(err, cluster.ErrInvalidRequest) {
			return errReply(http.StatusBadRequest, trimPkg(err)), true
		}
		if err != nil {
			return a.errorReply(err), true
		}
		return reply{status: http.StatusNoContent}, true
	}
	return unsupportedOp(), true
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
