package transport

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/acl"
	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/transit"
)

// grantFor returns the ID of an active just-in-time grant that lets te
// use capability on path (a transit data operation on one key), or "".
// A grant adds update on transit/<operation>/<key> (and the paths under
// it, e.g. sign/<key>/<hash>); it never creates keys. A use is recorded
// in the request's audit event (details.grant).
func (a *API) grantFor(req *request, te *access.TokenEntry, path, capability string) string {
	if capability != acl.Update {
		return ""
	}
	parts := strings.Split(path, "/")
	if len(parts) < 3 || parts[0] != "transit" || !slices.Contains(access.GrantOperations, parts[1]) {
		return ""
	}
	op, key := parts[1], parts[2]
	if op == "datakey" {
		if len(parts) < 4 {
			return ""
		}
		key = parts[3]
	}
	g, err := a.cfg.Access.ActiveGrant(te.Accessor, key, op, a.now())
	if err != nil || g == nil {
		return ""
	}
	if req.ev.Details == nil {
		req.ev.Details = map[string]string{}
	}
	req.ev.Details["grant"] = g.ID
	return g.ID
}

// The grants API: POST sys/grants requests a grant, GET lists them
// (LIST: their IDs), sys/grants/:id shows or (DELETE) revokes one,
// sys/grants/approve and sys/grants/revoke take {"id"}.

func (a *API) listGrants(req *request) reply {
	list, err := a.cfg.Access.ListGrants()
	if err != nil {
		return a.errorReply(err)
	}
	if req.method == "LIST" {
		ids := make([]string, 0, len(list))
		for _, g := range list {
			ids = append(ids, g.ID)
		}
		return reply{data: map[string]any{"keys": ids}}
	}
	now := a.now()
	out := make([]map[string]any, 0, len(list))
	for _, g := range list {
		out = append(out, grantData(g, now))
	}
	return reply{data: map[string]any{"grants": out}}
}

func (a *API) requestGrant(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	key, err1 := f.String("key", "")
	op, err2 := f.String("operation", "")
	reason, err3 := f.String("reason", "")
	ttl, _, err4 := f.Duration("ttl")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return errorFromTransit(firstErr(err1, err2, err3, err4))
	}
	if strings.HasPrefix(key, access.ReservedKeyPrefix) {
		// A key name input like a transit path's: grants are of the root
		// namespace, where this prefix names no key.
		return errReply(http.StatusBadRequest, "key names starting with "+access.ReservedKeyPrefix+" are reserved for namespaces")
	}
	req.ev.Key = key
	req.ev.Details = map[string]string{"operation": op, "reason": transit.Truncate(reason)}
	// The request's event is recorded by the pipeline afterwards, so that
	// it names the new grant.
	now := a.now()
	g, err := a.cfg.Access.RequestGrant(audit.WithEvent(req.ctx, nil), req.te, key, op, ttl, reason, now)
	if errors.Is(err, cluster.ErrInvalidRequest) {
		return errReply(http.StatusBadRequest, trimPkg(err))
	}
	if err != nil {
		return a.errorReply(err)
	}
	req.ev.Details["grant"] = g.ID
	return reply{data: grantData(g, now)}
}

// grantID is the {"id"} body of approve and revoke.
func grantID(req *request) (string, *reply) {
	var body struct {
		ID string `json:"id"`
	}
	if r := req.decode(&body); r != nil {
		return "", r
	}
	if body.ID == "" {
		r := errReply(http.StatusBadRequest, `the body must be {"id": "<grant id>"}`)
		return "", &r
	}
	req.ev.Details = map[string]string{"grant": body.ID}
	return body.ID, nil
}

func (a *API) approveGrant(req *request) reply {
	id, r := grantID(req)
	if r != nil {
		return *r
	}
	now := a.now()
	g, err := a.cfg.Access.ApproveGrant(req.ctx, id, req.te, now)
	if g != nil {
		req.ev.Key = g.Key
	}
	return a.grantResult(err, g, now)
}

func (a *API) revokeGrantBody(req *request) reply {
	id, r := grantID(req)
	if r != nil {
		return *r
	}
	return a.grantResult(a.cfg.Access.RevokeGrant(req.ctx, id), nil, a.now())
}

func (a *API) readGrant(req *request) reply {
	g, _, err := a.cfg.Access.ReadGrant(req.params["id"])
	return a.grantResult(err, g, a.now())
}

func (a *API) revokeGrantPath(req *request) reply {
	id := req.params["id"]
	req.ev.Details = map[string]string{"grant": id}
	return a.grantResult(a.cfg.Access.RevokeGrant(req.ctx, id), nil, a.now())
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (a *API) grantResult(err error, g *access.Grant, now time.Time) reply {
	switch {
	case errors.Is(err, access.ErrGrantNotFound):
		return errReply(http.StatusNotFound, "no such grant")
	case errors.Is(err, access.ErrTwoPerson):
		return errReply(http.StatusForbidden, "permission denied: "+trimPkg(err))
	case errors.Is(err, access.ErrGrantState):
		return errReply(http.StatusBadRequest, "the grant is not pending (already approved, or its request expired)")
	case err != nil:
		return a.errorReply(err)
	case g == nil:
		return reply{status: http.StatusNoContent}
	}
	return reply{data: grantData(g, now)}
}

func grantData(g *access.Grant, now time.Time) map[string]any {
	state := g.State
	if g.Expired(now) {
		state = "expired"
	}
	out := map[string]any{
		"id": g.ID, "key": g.Key, "operation": g.Operation, "ttl": int64(g.TTL / time.Second), "reason": g.Reason,
		"state": state, "requester": g.Requester, "requested_by": g.RequestedBy,
		"requested_at": g.RequestedAt.Format(time.RFC3339), "expires_at": g.ExpiresAt.Format(time.RFC3339),
	}
	if g.Approver != "" {
		out["approver"], out["approved_by"], out["approved_at"] = g.Approver, g.ApprovedBy, g.ApprovedAt.Format(time.RFC3339)
	}
	return out
}
