package transport

import (
	"errors"
	"net/http"
	"time"

	"github.com/keyraft/keyraft/cluster"
)

// routeBreakGlass serves sys/break-glass/*, Vault's generate-root
// ceremony for an emergency policy instead of a root token:
//
//   - config (GET; PUT {"policy", "duration"}, sudo): the emergency policy.
//   - attempt (GET status; PUT/POST {"duration"} starts; DELETE cancels):
//     no token, like generate-root: the shares are the authority.
//   - update (PUT/POST {"key", "nonce"}): one share; at the threshold the
//     answer holds encoded_token (the token XOR the attempt's otp).
//
// ok is false for other sys/ paths.
func (a *API) readBreakGlassConfig(*request) reply {
	c, err := a.cfg.Node.BreakGlassConfig()
	if err != nil {
		return a.errorReply(err)
	}
	if c == nil {
		return errReply(http.StatusNotFound, "break-glass is not configured")
	}
	return reply{data: map[string]any{"policy": c.Policy, "duration": int64(c.Duration / time.Second)}}
}

func (a *API) writeBreakGlassConfig(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	pol, err := f.String("policy", "")
	if err != nil {
		return errorFromTransit(err)
	}
	d, _, err := f.Duration("duration")
	if err != nil {
		return errorFromTransit(err)
	}
	err = a.cfg.Node.SetBreakGlassConfig(req.ctx, cluster.BreakGlassConfig{Policy: pol, Duration: d})
	if errors.Is(err, cluster.ErrInvalidRequest) {
		return errReply(http.StatusBadRequest, trimPkg(err))
	}
	if err != nil {
		return a.errorReply(err)
	}
	return reply{status: http.StatusNoContent}
}

// breakGlassAttempt serves sys/break-glass/attempt: GET shows it, DELETE
// cancels it and POST starts one. No token, as generate-root: an attempt
// whose starter vanished stays cancellable; the event records who did it.
func (a *API) breakGlassAttempt(req *request) reply {
	n := a.cfg.Node
	switch req.method {
	case http.MethodGet:
		return reply{raw: a.breakGlassStatus()}
	case http.MethodDelete:
		ceremonyEvent(req, "break-glass", "cancel", n.BreakGlassCancel())
		return reply{status: http.StatusNoContent}
	}
	ceremonyEvent(req, "break-glass", "start", "")
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	d, _, err := f.Duration("duration")
	if err != nil {
		return errorFromTransit(err)
	}
	// Refused early too, so holders do not give shares in vain.
	if s, err := n.BreakGlassSession(a.now()); err != nil {
		return a.errorReply(err)
	} else if s != nil {
		return errReply(http.StatusBadRequest, trimPkg(cluster.ErrBreakGlassActive))
	}
	nonce, otp, required, err := n.BreakGlassInit(d)
	switch {
	case errors.Is(err, cluster.ErrBreakGlassNotConfigured), errors.Is(err, cluster.ErrInvalidRequest),
		errors.Is(err, cluster.ErrCeremonyInProgress):
		return errReply(http.StatusBadRequest, trimPkg(err))
	case err != nil:
		return a.rekeyError(err)
	}
	req.ev.Details["nonce"] = nonce
	a.log.Warn("break-glass attempt started", "remote_addr", req.ev.RemoteAddr)
	return reply{raw: map[string]any{"started": true, "nonce": nonce, "otp": otp, "otp_length": len(otp),
		"progress": 0, "required": required, "complete": false}}
}

// breakGlassUpdate takes one share; at the threshold the answer holds
// encoded_token (the token XOR the attempt's otp).
func (a *API) breakGlassUpdate(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	nonce, share, r := shareUpdate(f)
	if r != nil {
		return *r
	}
	defer clear(share)
	req.ev.Details = map[string]string{"break_glass": "share"}
	progress, required, encoded, s, err := a.cfg.Node.BreakGlassUpdate(req.ctx, nonce, share, a.now())
	if err != nil {
		if errors.Is(err, cluster.ErrBreakGlassNotConfigured) || errors.Is(err, cluster.ErrBreakGlassActive) {
			return errReply(http.StatusBadRequest, trimPkg(err))
		}
		return a.rekeyError(err)
	}
	out := map[string]any{"started": true, "nonce": nonce, "progress": progress, "required": required, "complete": encoded != ""}
	if encoded != "" {
		out["encoded_token"] = encoded
		out["expires_at"] = s.ExpiresAt.Format(time.RFC3339)
		out["policy"] = s.Policy
		req.ev.Details = map[string]string{"break_glass": "activated", "accessor": s.Accessor, "policy": s.Policy,
			"expires_at": s.ExpiresAt.Format(time.RFC3339)}
	}
	return reply{raw: out}
}
