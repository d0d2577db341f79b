package transport

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/keyraft/keyraft/transit"
	"github.com/prometheus/client_golang/prometheus"
)

// The ceremonies (unseal, rekey, generate-root, break-glass) take shares
// the same way: one share per request, in hex or base64.

// shareField decodes the "key" field of a ceremony's update: one share,
// in hex or base64.
func shareField(f *transit.Fields) ([]byte, *reply) {
	key, err := f.String("key", "")
	if err != nil {
		r := errorFromTransit(err)
		return nil, &r
	}
	share, err := hex.DecodeString(key)
	if err != nil {
		if share, err = base64.StdEncoding.DecodeString(key); err != nil || key == "" {
			r := errReply(http.StatusBadRequest, "'key' must be a valid hex or base64 string")
			return nil, &r
		}
	}
	return share, nil
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
	if s, err := n.BreakGlassSession(a.now()); err == nil && s != nil {
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
		if s, err := a.cfg.Node.BreakGlassSession(a.now()); err == nil && s != nil {
			return 1
		}
		return 0
	}))
}

// shareUpdate decodes a ceremony's update: the attempt's nonce and one
// share. The caller clears the share when done.
func shareUpdate(f *transit.Fields) (nonce string, share []byte, _ *reply) {
	nonce, err := f.String("nonce", "")
	if err != nil {
		r := errorFromTransit(err)
		return "", nil, &r
	}
	share, r := shareField(f)
	if r != nil {
		return "", nil, r
	}
	return nonce, share, nil
}
