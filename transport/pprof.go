package transport

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/keyraft/keyraft/audit"
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
func (a *API) servePprof(w http.ResponseWriter, r *http.Request, ev *audit.Event) {
	req := &request{ctx: r.Context(), method: r.Method, query: r.URL.Query(), token: tokenFrom(r), ev: ev}
	ev.Operation = "sys/pprof"
	name := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1/sys/pprof"), "/")
	if r.Method != http.MethodGet {
		a.finish(w, r, ev, unsupportedOp())
		return
	}
	if name != "" && !pprofProfiles[name] {
		a.finish(w, r, ev, errReply(http.StatusNotFound, "unknown profile: use one of sys/pprof/profile, trace, heap, allocs, goroutine, block, mutex, threadcreate, cmdline, symbol"))
		return
	}
	if s := r.URL.Query().Get("seconds"); s != "" {
		if n, err := strconv.Atoi(s); err != nil || n < 1 || n > maxProfileSeconds {
			a.finish(w, r, ev, errReply(http.StatusBadRequest, "seconds must be a whole number from 1 to "+strconv.Itoa(maxProfileSeconds)))
			return
		}
	}
	if !a.admitRootStream(w, r, req, "profiling the node") {
		return
	}
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
}
