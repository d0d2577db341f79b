package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/acl"
	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/transit"
)

// Hygiene of access: the token and policy mistakes the hygiene report
// (GET sys/report/hygiene) adds to the keys' own. Each finding names its
// object (policy:<name>, token:<accessor>, key:<name>) and a fix.
//
//	policy-all-keys-decrypt|export|backup  a policy grants the operation on
//	                                        every key (critical; warning when
//	                                        only under conditions)
//	token-no-ttl                            a non-root token without a TTL of
//	                                        its own or an explicit max (warning)
//	root-token-extra                        a root token besides the initial one
//	                                        (critical)
//	root-token-used                         a root token used recently outside
//	                                        init/generate-root/break-glass (warning)
//	key-name-in-several-namespaces          one key name in several namespaces
//	                                        (info)

// Access hygiene bounds.
const (
	// rootUseWindow is how far back the audit log is read for uses of a
	// root token, and rootUseMaxEvents how many events at most: the
	// report must stay cheap on a long log.
	rootUseWindow    = 7 * 24 * time.Hour
	rootUseMaxEvents = 100000
	// hygieneProbeKey is a key name no policy names: a rule that grants
	// on it grants on every key.
	hygieneProbeKey = "keyraft-hygiene-probe-any-key"
)

// AccessHygiene returns the hygiene check of tokens, policies and
// namespaced key names on node n, judged at now() (nil: the system
// clock). cmd/keyraft wires it into Config.HygieneChecks.
func AccessHygiene(node Node, now func() time.Time) HygieneCheck {
	n := hygieneSource{node: node, acc: node.Access()}
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context) ([]transit.Finding, error) {
		t := now().UTC()
		var out []transit.Finding
		for _, check := range []func(context.Context, hygieneSource, time.Time) ([]transit.Finding, error){
			broadPolicyFindings, tokenFindings, sharedKeyNameFindings,
		} {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			f, err := check(ctx, n, t)
			if err != nil {
				return nil, err
			}
			out = append(out, f...)
		}
		return out, nil
	}
}

// hygieneSource is what the access checks read: the access records and
// the node's audit log and key records.
type hygieneSource struct {
	node Node
	acc  *access.Service
}

// broadProbes are the operations that must not be granted on every key:
// each reveals plaintext or key material.
var broadProbes = []struct{ op, path, capability string }{
	{"decrypt", "transit/decrypt/" + hygieneProbeKey, acl.Update},
	{"export", "transit/export/encryption-key/" + hygieneProbeKey, acl.Read},
	{"export", "transit/export/signing-key/" + hygieneProbeKey, acl.Read},
	{"export", "transit/export/hmac-key/" + hygieneProbeKey, acl.Read},
	{"backup", "transit/backup/" + hygieneProbeKey, acl.Read},
}

// broadPolicyFindings reports policies (of every namespace) that grant
// decrypt, export or backup on any key: the rule that grants it on a key
// name no policy names. A grant only under conditions (source_cidrs,
// time_window, required_context) is a warning, otherwise critical.
func broadPolicyFindings(_ context.Context, n hygieneSource, _ time.Time) ([]transit.Finding, error) {
	namespaces, err := n.acc.ListNamespaces()
	if err != nil {
		return nil, err
	}
	var out []transit.Finding
	for _, ns := range append([]string{""}, namespaces...) {
		names, err := n.acc.ListPoliciesIn(ns)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if name == "root" {
				continue // what root can do is the root-token checks' concern
			}
			src, _, err := n.acc.ReadPolicyIn(ns, name)
			if errors.Is(err, access.ErrPolicyNotFound) {
				continue // the built-in default, not written
			}
			if err != nil {
				return nil, err
			}
			p, err := acl.Parse(name, []byte(src))
			if err != nil {
				continue // grants nothing (see loadPolicy)
			}
			seen := map[string]bool{}
			for _, pr := range broadProbes {
				if seen[pr.op] {
					continue
				}
				// No address, time or context: a rule with conditions
				// fails them and says so.
				d := acl.Evaluate([]*acl.Policy{p}, acl.Request{Path: pr.path, Capability: pr.capability})
				severity, how := "", ""
				switch {
				case d.Allowed:
					severity, how = transit.SeverityCritical, ""
				case d.Refused && d.Rule != "" && !strings.HasPrefix(d.Reason, "denied by"):
					severity, how = transit.SeverityWarning, " (under conditions)"
				default:
					continue
				}
				seen[pr.op] = true
				out = append(out, transit.Finding{
					Severity: severity, Check: "policy-all-keys-" + pr.op, Object: "policy:" + name, Namespace: ns,
					Message: fmt.Sprintf("policy %q grants %s on every key%s through rule %q", name, pr.op, how, d.Rule),
					Fix: fmt.Sprintf("name the keys in the rule (e.g. path %q) and deny the rest, then: keyraft policy write%s %s FILE",
						strings.TrimSuffix(pr.path, hygieneProbeKey)+"<key>", nsFlag(ns), name),
				})
			}
		}
	}
	return out, nil
}

// nsFlag is the CLI flag that selects namespace ns, with a leading space.
func nsFlag(ns string) string {
	if ns == "" {
		return ""
	}
	return " -namespace=" + ns
}

func isRootToken(e *access.TokenEntry) bool { return slices.Contains(e.Policies, "root") }

// tokenFindings reports live tokens: non-root ones without a TTL of
// their own, root tokens besides the initial one, and root tokens used
// recently for anything but init, generate-root or break-glass.
func tokenFindings(_ context.Context, n hygieneSource, now time.Time) ([]transit.Finding, error) {
	all, err := n.acc.ListTokens()
	if err != nil {
		return nil, err
	}
	var roots []*access.TokenEntry
	var out []transit.Finding
	for _, e := range all {
		if e.Expired(now) {
			continue // refused already; the tidy pass removes it
		}
		if isRootToken(e) {
			roots = append(roots, e)
			continue
		}
		if f, ok := noTTLFinding(e); ok {
			out = append(out, f)
		}
	}
	// The initial root token: the oldest one made at init or by
	// generate-root (auth/token/root). Every other root token is extra.
	sort.SliceStable(roots, func(i, j int) bool {
		pi, pj := roots[i].Path == "auth/token/root", roots[j].Path == "auth/token/root"
		if pi != pj {
			return pi
		}
		return roots[i].CreationTime.Before(roots[j].CreationTime)
	})
	for i, e := range roots {
		if i == 0 && e.Path == "auth/token/root" {
			continue
		}
		out = append(out, transit.Finding{
			Severity: transit.SeverityCritical, Check: "root-token-extra", Object: "token:" + e.Accessor, Namespace: e.Namespace,
			Message: fmt.Sprintf("root token %s (made by %s at %s) exists besides the initial one", e.Accessor, e.Path, e.CreationTime.UTC().Format(time.RFC3339)),
			Fix:     "revoke it: keyraft token revoke" + nsFlag(e.Namespace) + " -accessor " + e.Accessor + "; make root tokens only when needed, with keyraft operator generate-root",
		})
	}
	used, err := rootUses(n, roots, now)
	if err != nil {
		return nil, err
	}
	for _, e := range roots {
		u, ok := used[e.Accessor]
		if !ok {
			continue
		}
		out = append(out, transit.Finding{
			Severity: transit.SeverityWarning, Check: "root-token-used", Object: "token:" + e.Accessor, Namespace: e.Namespace,
			Message: fmt.Sprintf("root token %s was used %d times in the last %d days, last for %s at %s", e.Accessor, u.count,
				int(rootUseWindow/(24*time.Hour)), u.lastOp, u.last.Format(time.RFC3339)),
			Fix: "use tokens with narrow policies for daily work, and break-glass for emergencies; then revoke the root token: keyraft token revoke -self (with it) or keyraft token revoke -accessor " + e.Accessor,
		})
	}
	return out, nil
}

// noTTLFinding reports a non-root token that lives as long as the system
// allows: no TTL asked for (the 768 h default) and no explicit max.
func noTTLFinding(e *access.TokenEntry) (transit.Finding, bool) {
	periodic := e.Period > 0 && e.Renewable
	if e.ExplicitMaxTTL > 0 || (!periodic && !e.ExpireTime.IsZero() && e.TTL > 0 && e.TTL < access.DefaultTokenTTL) {
		return transit.Finding{}, false
	}
	life := "never expires"
	switch {
	case periodic:
		life = "is periodic (" + e.Period.String() + ") with no explicit max: renewed in time, it lives forever"
	case !e.ExpireTime.IsZero():
		life = "has no TTL of its own (the default " + access.DefaultTokenTTL.String() + ", renewable) and no explicit max"
	}
	fix := "replace it with a token that has one: keyraft token create" + nsFlag(e.Namespace) + " -ttl=1h -explicit-max-ttl=24h -policy=..., then keyraft token revoke" + nsFlag(e.Namespace) + " -accessor " + e.Accessor
	if e.Path == "auth/cert/login" {
		fix = "give the role a TTL: vault write auth/cert/certs/" + e.Meta["cert_name"] + " token_ttl=1h; then revoke this one: keyraft token revoke -accessor " + e.Accessor
	}
	return transit.Finding{
		Severity: transit.SeverityWarning, Check: "token-no-ttl", Object: "token:" + e.Accessor, Namespace: e.Namespace,
		Message: fmt.Sprintf("token %s (%s, policies %s) %s", e.Accessor, e.DisplayName, strings.Join(e.Policies, ","), life),
		Fix:     fix,
	}, true
}

type rootUse struct {
	count  int
	last   time.Time
	lastOp string
}

// rootUses reads the recent audit log (at most rootUseMaxEvents events,
// within rootUseWindow) for events by the root tokens' accessors other
// than init, generate-root and break-glass.
func rootUses(n hygieneSource, roots []*access.TokenEntry, now time.Time) (map[string]*rootUse, error) {
	out := map[string]*rootUse{}
	if len(roots) == 0 {
		return out, nil
	}
	acc := map[string]bool{}
	for _, e := range roots {
		acc[e.Accessor] = true
	}
	from := uint64(1)
	if head := n.node.AuditHeadSeq(); head > rootUseMaxEvents {
		from = head - rootUseMaxEvents + 1
	}
	since := now.Add(-rootUseWindow)
	err := n.node.AuditEvents(from, func(ev *audit.Event) error {
		if !acc[ev.Identity] || ev.Time.Before(since) {
			return nil
		}
		for _, p := range []string{"sys/init", "sys/generate-root", "sys/break-glass"} {
			if strings.HasPrefix(ev.Operation, p) {
				return nil
			}
		}
		u := out[ev.Identity]
		if u == nil {
			u = &rootUse{}
			out[ev.Identity] = u
		}
		u.count++
		if !ev.Time.Before(u.last) {
			u.last, u.lastOp = ev.Time.UTC(), ev.Operation
		}
		return nil
	})
	return out, err
}

// sharedKeyNameFindings reports a key name used in more than one
// namespace (the root namespace included): a client sending the wrong
// X-Vault-Namespace (or none) reaches a different key under the same name.
func sharedKeyNameFindings(_ context.Context, n hygieneSource, _ time.Time) ([]transit.Finding, error) {
	stored, err := n.node.List(fsm.RecordTransitKey)
	if err != nil {
		return nil, err
	}
	where := map[string][]string{}
	for _, k := range stored {
		if strings.Contains(k, "/") {
			continue
		}
		ns, name := "", k
		if rest, ok := strings.CutPrefix(k, access.ReservedKeyPrefix); ok {
			if ns, name, ok = strings.Cut(rest, "."); !ok {
				continue
			}
		}
		where[name] = append(where[name], ns)
	}
	names := make([]string, 0, len(where))
	for name, nss := range where {
		if len(nss) > 1 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []transit.Finding
	for _, name := range names {
		shown := make([]string, len(where[name]))
		for i, ns := range where[name] {
			shown[i] = ns
			if ns == "" {
				shown[i] = "(root)"
			}
		}
		sort.Strings(shown)
		out = append(out, transit.Finding{
			Severity: transit.SeverityInfo, Check: "key-name-in-several-namespaces", Object: "key:" + name,
			Message: fmt.Sprintf("key name %q is used in namespaces %s: a client with the wrong namespace reaches another key under the same name", name, strings.Join(shown, ", ")),
			Fix:     "give each namespace's key a distinct name (keyraft keys create -namespace=NS NEWNAME, move the data, then retire the old name)",
		})
	}
	return out, nil
}
