package transport

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"
)

// maxProfileSeconds bounds a CPU profile or an execution trace.
const maxProfileSeconds = 60

// pprofProfiles are the profiles GET sys/pprof/<name> serves, as Vault
// names them: a CPU profile (?seconds=N), an execution trace, and the
// runtime's named profiles.
var pprofProfiles = setOf("profile", "trace", "heap", "allocs", "goroutine", "block", "mutex",
	"threadcreate", "cmdline", "symbol")

// servePprof answers GET sys/pprof (the index) and sys/pprof/<profile>,
// so an operator can profile a live node. It needs a root token, like
// Vault's, and is recorded before the profile is sent. A CPU profile or
// trace runs for ?seconds (default 30, at most 60).
func (a *API) servePprof(req *request) reply {
	name := req.params["profile"]
	if name != "" && !pprofProfiles[name] {
		return errReply(http.StatusNotFound, "unknown profile: use one of sys/pprof/profile, trace, heap, allocs, goroutine, block, mutex, threadcreate, cmdline, symbol")
	}
	if s := req.query.Get("seconds"); s != "" {
		if n, err := strconv.Atoi(s); err != nil || n < 1 || n > maxProfileSeconds {
			return errReply(http.StatusBadRequest, "seconds must be a whole number from 1 to "+strconv.Itoa(maxProfileSeconds))
		}
	}
	r := req.http
	return reply{stream: func(w http.ResponseWriter) {
		if name == "profile" || name == "trace" {
			// The server's write timeout would cut a long profile.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add((maxProfileSeconds + 30) * time.Second))
		}
		switch name {
		case "":
			pprof.Index(w, r)
		case "profile":
			pprof.Profile(w, r)
		case "trace":
			pprof.Trace(w, r)
		case "cmdline":
			pprof.Cmdline(w, r)
		case "symbol":
			pprof.Symbol(w, r)
		default:
			pprof.Handler(name).ServeHTTP(w, r)
		}
	}}
}
