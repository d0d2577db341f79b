package acl

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// Request is one check: may the caller use Capability on Path?
type Request struct {
	// Path is the Vault path, without the leading slash or /v1/:
	// "transit/encrypt/app". Evaluate refuses paths that are not clean
	// (a "//", "." or ".." segment, a leading "/", a control character).
	// For list it checks the path with a trailing "/", adding one, as
	// Vault does; for the other capabilities without, dropping one, as
	// keyraft's router serves "transit/keys/app/" as "transit/keys/app".
	Path string
	// Capability is create, read, update, patch, delete, list or sudo
	// (see CapabilityFor). Anything else is refused.
	Capability string
	// RemoteIP is the client's address, for source_cidrs. An IPv4-mapped
	// IPv6 address is checked as IPv4. Nil fails every source_cidrs.
	RemoteIP net.IP
	// Time is when the request arrived, for time_window; only its UTC
	// hour and minute count. The zero Time fails every time_window.
	Time time.Time
	// Context holds the decoded associated data or encryption context
	// the request carries, for required_context. Evaluate only looks
	// keys up; values are never put into a Reason.
	Context map[string]string
}

// Decision is the answer to a Request.
type Decision struct {
	Allowed bool
	// Reason says why, in one line, for the audit log and the operator:
	//
	//	allowed by policy "app" rule "transit/encrypt/app"
	//	denied by policy "ops" rule "transit/decrypt/*"
	//	no policy grants update on transit/decrypt/app
	//
	// It names policies, rules and the conditions that failed. Vault tells
	// clients only "permission denied"; whether a client sees more is the
	// caller's choice.
	Reason string
	// Policy and Rule (its path pattern) are the rule that decided, when
	// one did: the deny rule that refused, the rule that granted, or the
	// most specific rule that did not grant. Both are empty when no rule
	// matched or the request was malformed.
	Policy, Rule string
	// Refused is set on a denial that a policy decided: a deny rule
	// matched, or the rule that would grant has conditions that fail
	// (or the request is malformed). It is false when the denial is only
	// for want of a grant. An out-of-band grant (a just-in-time grant)
	// may lift only the latter: it must never override what a policy
	// explicitly forbids.
	Refused bool
}

// Evaluate decides req against the policies of one token, by the rules in
// the package documentation:
//
//  1. A matching deny rule whose conditions hold, in any policy, denies.
//  2. Otherwise Root, if present, allows.
//  3. Otherwise the most specific pattern among the matching grant rules
//     of all policies decides: the request is allowed if one of the rules
//     with that pattern grants the capability and its conditions hold.
//  4. Otherwise, and when nothing matches, the request is denied.
//
// It is a pure function of its arguments: no clock, no I/O, no shared
// state. Nil policies are skipped.
func Evaluate(policies []*Policy, req Request) Decision {
	want := capBit(req.Capability)
	if want == 0 || want == capDeny {
		return Decision{Reason: "unknown capability " + quoteShort(req.Capability), Refused: true}
	}
	path := req.Path
	if msg := checkPath(path); msg != "" {
		return Decision{Reason: "path " + quoteShort(path) + " " + msg, Refused: true}
	}
	// Check the path the router will serve: keyraft's router drops a
	// trailing slash, and a list is of a directory, with one, as in
	// Vault. Otherwise an exact deny on "transit/keys/app" would miss
	// "transit/keys/app/", which is served as the same thing.
	list := want == capBit(List)
	switch {
	case list && !strings.HasSuffix(path, "/"):
		path += "/"
	case !list && len(path) > 1 && strings.HasSuffix(path, "/"):
		path = path[:len(path)-1]
	}
	f := facts{ip: req.RemoteIP, at: req.Time, ctx: req.Context}

	var (
		root *Policy
		// The most specific matching grant rule so far, and among the
		// rules with its pattern: one that grants the capability and
		// holds, and one that grants it but whose conditions fail.
		best, granted, failed          *rule
		bestPol, grantedPol, failedPol *Policy
		failedCond                     *condition
	)
	for _, p := range policies {
		if p == nil {
			continue
		}
		if p.root {
			root = p
			continue
		}
		for i := range p.rules {
			r := &p.rules[i]
			if r.segs == nil { // the common case, inline
				if r.prefix {
					if len(path) < len(r.lit) || path[:len(r.lit)] != r.lit {
						continue
					}
				} else if path != r.lit && !(list && len(path) == len(r.lit)+1 && path[:len(r.lit)] == r.lit) {
					continue
				}
			} else if !r.match(path, list) {
				continue
			}
			if r.caps == capDeny {
				if ok, _ := r.holds(&f); ok {
					return Decision{
						Reason: ruleText("denied by ", p, r, ""),
						Policy: p.Name, Rule: r.pattern, Refused: true,
					}
				}
				continue
			}
			switch {
			case best == nil || beats(r, best):
				best, bestPol = r, p
				granted, grantedPol, failed, failedPol, failedCond = nil, nil, nil, nil, nil
			case r.pattern != best.pattern:
				continue
			}
			if granted != nil || r.caps&want == 0 {
				continue
			}
			if ok, c := r.holds(&f); ok {
				granted, grantedPol = r, p
			} else if failed == nil {
				failed, failedPol, failedCond = r, p, c
			}
		}
	}
	switch {
	case root != nil:
		return Decision{Allowed: true, Reason: "allowed by the root policy", Policy: root.Name}
	case granted != nil:
		return Decision{
			Allowed: true,
			Reason:  ruleText("allowed by ", grantedPol, granted, ""),
			Policy:  grantedPol.Name, Rule: granted.pattern,
		}
	case best == nil:
		return Decision{Reason: "no policy grants " + req.Capability + " on " + path}
	case failed != nil:
		return Decision{
			Reason: ruleText("", failedPol, failed, " grants "+req.Capability+" on "+path+" only when its conditions hold: "+failedCond.explain(&f)),
			Policy: failedPol.Name, Rule: failed.pattern, Refused: true,
		}
	}
	return Decision{
		Reason: ruleText("the most specific rule for "+path+", ", bestPol, best, ", does not grant "+req.Capability),
		Policy: bestPol.Name, Rule: best.pattern,
	}
}

// ruleText is `<before>policy "name" rule "pattern"<after>`, built in
// one allocation in the usual case: it is on the path of every request.
func ruleText(before string, p *Policy, r *rule, after string) string {
	var b strings.Builder
	b.Grow(len(before) + len(p.Name) + len(r.pattern) + len(after) + 20)
	b.WriteString(before)
	b.WriteString("policy ")
	writeQuoted(&b, p.Name)
	b.WriteString(" rule ")
	writeQuoted(&b, r.pattern)
	b.WriteString(after)
	return b.String()
}

// writeQuoted writes s in Go syntax, as strconv.Quote does, without
// allocating when s is plain printable ASCII.
func writeQuoted(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b.WriteString(strconv.Quote(s))
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}
