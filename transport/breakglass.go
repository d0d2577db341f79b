package transport

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyraft/keyraft/access"
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
	c, err := a.cfg.Access.BreakGlassConfig()
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
	err = a.cfg.Access.SetBreakGlassConfig(req.ctx, access.BreakGlassConfig{Policy: pol, Duration: d})
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
	if s, err := a.cfg.Access.BreakGlassSession(a.now()); err != nil {
		return a.errorReply(err)
	} else if s != nil {
		return errReply(http.StatusBadRequest, trimPkg(access.ErrBreakGlassActive))
	}
	nonce, otp, required, err := n.BreakGlassInit(d)
	switch {
	case errors.Is(err, access.ErrBreakGlassNotConfigured), errors.Is(err, cluster.ErrInvalidRequest),
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
	nonce, share, r := shareUpdate(req)
	if r != nil {
		return *r
	}
	defer clear(share)
	req.ev.Details = map[string]string{"break_glass": "share"}
	progress, required, encoded, s, err := a.cfg.Node.BreakGlassUpdate(req.ctx, nonce, share, a.now())
	if err != nil {
		if errors.Is(err, access.ErrBreakGlassNotConfigured) || errors.Is(err, access.ErrBreakGlassActive) {
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

// breakGlassStatus is the answer of GET sys/break-glass/attempt: the
// attempt in progress and whether a session is on.
func (a *API) breakGlassStatus() map[string]any {
	n := a.cfg.Node
	out := map[string]any{"started": false, "progress": 0, "required": 0, "active": false}
	if st := n.SealStatus(); st.Threshold > 0 {
		out["required"] = st.Threshold
	}
	if nonce, progress, d, ok := n.BreakGlassProgress(); ok {
		out["started"], out["nonce"], out["progress"], out["duration"] = true, nonce, progress, int64(d/time.Second)
	}
	if s, err := a.cfg.Access.BreakGlassSession(a.now()); err == nil && s != nil {
		out["active"], out["expires_at"], out["policy"] = true, s.ExpiresAt.Format(time.RFC3339), s.Policy
	}
	return out
}

// registerBreakGlassMetric adds keyraft_break_glass_active: 1 while a
// break-glass session is on (by this node's clock), so that alerting
// can page on it.
func (a *API) registerBreakGlassMetric() {
	a.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keyraft_break_glass_active",
		Help: "1 while a break-glass session (emergency policy from the unseal or recovery shares) is active.",
	}, func() float64 {
		if a.cfg.Node.Sealed() {
			return 0
		}
		if s, err := a.cfg.Access.BreakGlassSession(a.now()); err == nil && s != nil {
			return 1
		}
		return 0
	}))
}
