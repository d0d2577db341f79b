package transport

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/transit"
)

// HygieneCheck finds hygiene problems of one kind of object (keys,
// tokens, policies); Config.HygieneChecks adds checks to the keys' own.
type HygieneCheck func(ctx context.Context) ([]transit.Finding, error)

// routeReport serves GET sys/report/hygiene: every finding, most severe
// first, with counts per severity. Reading it needs "read" on the path
// (the findings name keys, tokens and policies).
func (a *API) hygieneReport(req *request) reply {
	ctx, cancel := context.WithTimeout(req.ctx, time.Minute)
	defer cancel()
	checks := append([]HygieneCheck{a.cfg.Transit.Hygiene}, a.cfg.HygieneChecks...)
	findings := []transit.Finding{}
	for _, check := range checks {
		f, err := check(ctx)
		if err != nil {
			return a.errorReply(fmt.Errorf("hygiene report: %w", err))
		}
		findings = append(findings, f...)
	}
	for i := range findings {
		namespaced(&findings[i])
	}
	transit.SortFindings(findings)
	counts := map[string]int{transit.SeverityInfo: 0, transit.SeverityWarning: 0, transit.SeverityCritical: 0}
	for _, f := range findings {
		counts[f.Severity]++
	}
	return reply{status: http.StatusOK, data: map[string]any{
		"findings": findings, "counts": counts, "time": a.now().UTC().Format(time.RFC3339),
	}}
}

// namespaced rewrites a finding about a key of a namespace, which the
// engine knows by its stored name (access.NamespaceKeyPrefix), to the
// name and namespace its users know, with the fix's command to match.
func namespaced(f *transit.Finding) {
	stored, ok := strings.CutPrefix(f.Object, "key:"+access.ReservedKeyPrefix)
	if !ok {
		return
	}
	ns, name, ok := strings.Cut(stored, ".")
	if !ok {
		return
	}
	full := access.NamespaceKeyPrefix(ns) + name
	f.Object, f.Namespace = "key:"+name, ns
	f.Message = strings.ReplaceAll(f.Message, strconv.Quote(full), strconv.Quote(name)+" (namespace "+ns+")")
	f.Fix = strings.ReplaceAll(f.Fix, " "+full, " -namespace="+ns+" "+name)
}
