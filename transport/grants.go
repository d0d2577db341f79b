package transport

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

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
func (a *API) grantFor(req *request, te *cluster.TokenEntry, path, capability string) string {
	if capability != acl.Update {
		return ""
	}
	parts := strings.Split(path, "/")
	if len(parts) < 3 || parts[0] != "transit" || !slices.Contains(cluster.GrantOperations, parts[1]) {
		return ""
	}
	op, key := parts[1], parts[2]
	if op == "datakey" {
		if len(parts) < 4 {
			return ""
		}
		key = parts[3]
	}
	g, err := a.cfg.Node.ActiveGrant(te.Accessor, key, op, a.now())
	if err != nil || g == nil {
		return ""
	}
	if req.ev.Details == nil {
		req.ev.Details = map[string]string{}
	}
	req.ev.Details["grant"] = g.ID
	return g.ID
}

// routeGrants serves sys/grants: POST requests a grant, GET lists them
// (LIST: their IDs), sys/grants/:id shows or (DELETE) revokes one,
// sys/grants/approve and sys/grants/revoke take {"id"}.
func (a *API) routeGrants(req *request, p []string) (reply, bool) {
	if len(p) == 0 || p[0] != "grants" || len(p) > 2 {
		return reply{}, false
	}
	te, r := a.authenticate(req)
	if r != nil {
		return *r, true
	}
	n := a.cfg.Node
	now := a.now()
	if len(p) == 1 {
		switch req.method {
		case "LIST", http.MethodGet:
			list, err := n.ListGrants()
			if err != nil {
				return a.errorReply(err), true
			}
			if req.method == "LIST" {
				ids := make([]string, 0, len(list))
				for _, g := range list {
					ids = append(ids, g.ID)
				}
				return reply{data: map[string]any{"keys": ids}}, true
			}
			out := make([]map[string]any, 0, len(list))
			for _, g := range list {
				out = append(out, grantData(g, now))
			}
			return reply{data: map[string]any{"grants": out}}, true
		case http.MethodPost:
			f, r := req.fields(nil)
			if r != nil {
				return *r, true
			}
			key, err1 := f.String("key", "")
			op, err2 := f.String("operation", "")
			reason, err3 := f.String("reason", "")
			ttl, _, err4 := f.Duration("ttl")
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				return errorFromTransit(firstErr(err1, err2, err3, err4)), true
			}
			if strings.HasPrefix(key, cluster.ReservedKeyPrefix) {
				// A key name input like a transit path's: grants are of
				// the root namespace, where this prefix names no key.
				return errReply(http.StatusBadRequest, "key names starting with "+cluster.ReservedKeyPrefix+" are reserved for namespaces"), true
			}
			req.ev.Key = key
			req.ev.Details = map[string]string{"operation": op, "reason": transit.Truncate(reason)}
			// The request's event is recorded by the pipeline afterwards,
			// so that it names the new grant.
			g, err := n.RequestGrant(audit.WithEvent(req.ctx, nil), te, key, op, ttl, reason, now)
			if errors.Is(err, cluster.ErrInvalidRequest) {
				return errReply(http.StatusBadRequest, trimPkg(err)), true
			}
			if err != nil {
				return a.errorReply(err), true
			}
			req.ev.Details["grant"] = g.ID
			return reply{data: grantData(g, now)}, true
		}
		return unsupportedOp(), true
	}
	id := p[1]
	switch {
	case (id == "approve" || id == "revoke") && req.method == http.MethodPost:
		var body struct {
			ID string `json:"id"`
		}
		if r := req.decode(&body); r != nil {
			return *r, true
		}
		if body.ID == "" {
			return errReply(http.StatusBadRequest, `the body must be {"id": "<grant id>"}`), true
		}
		req.ev.Details = map[string]string{"grant": body.ID}
		if id == "revoke" {
			req.ev.Status = http.StatusNoContent
			return a.grantResult(n.RevokeGrant(req.ctx, body.ID), nil, now), true
		}
		g, err := n.ApproveGrant(req.ctx, body.ID, te, now)
		if g != nil {
			req.ev.Key = g.Key
		}
		return a.grantResult(err, g, now), true
	case req.method == http.MethodGet:
		g, _, err := n.ReadGrant(id)
		return a.grantResult(err, g, now), true
	case req.method == http.MethodDelete:
		req.ev.Status = http.StatusNoContent
		req.ev.Details = map[string]string{"grant": id}
		return a.grantResult(n.RevokeGrant(req.ctx, id), nil, now), true
	}
	return unsupportedOp(), true
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (a *API) grantResult(err error, g *cluster.Grant, now time.Time) reply {
	switch {
	case errors.Is(err, cluster.ErrGrantNotFound):
		return errReply(http.StatusNotFound, "no such grant")
	case errors.Is(err, cluster.ErrTwoPerson):
		return errReply(http.StatusForbidden, "permission denied: "+trimPkg(err))
	case errors.Is(err, cluster.ErrGrantState):
		return errReply(http.StatusBadRequest, "the grant is not pending (already approved, or its request expired)")
	case err != nil:
		return a.errorReply(err)
	case g == nil:
		return reply{status: http.StatusNoContent}
	}
	return reply{data: grantData(g, now)}
}

func grantData(g *cluster.Grant, now time.Time) map[string]any {
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
