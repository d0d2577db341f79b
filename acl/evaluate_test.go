package acl

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustParse(t testing.TB, name, src string) *Policy {
	t.Helper()
	p, err := Parse(name, []byte(src))
	if err != nil {
		t.Fatalf("Parse(%q): %v", name, err)
	}
	return p
}

// at is a request time on some day, in UTC.
func at(hhmm string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", "2026-03-14 "+hhmm)
	if err != nil {
		panic(err)
	}
	return t
}

// The policy of the package documentation.
const docPolicy = `
path "transit/encrypt/app" { capabilities = ["update"] }
path "transit/decrypt/*"   { capabilities = ["deny"] }
path "transit/keys/+/rotate" { capabilities = ["update", "sudo"] }
path "transit/*" {
  capabilities = ["read", "list"]
  condition { source_cidrs = ["10.0.0.0/8"] }
  condition { time_window = "08:00-18:00" }          # UTC, may wrap midnight
  condition { required_context = { tenant = "acme" } }
}
`

type evalCase struct {
	name     string
	policies []*Policy
	req      Request
	allowed  bool
	// reason must be a substring of Decision.Reason; policy and rule,
	// when set, must equal Decision.Policy and Decision.Rule.
	reason, policy, rule string
}

func runEval(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Evaluate(c.policies, c.req)
			if d.Allowed != c.allowed {
				t.Fatalf("Allowed = %v, want %v (reason: %s)", d.Allowed, c.allowed, d.Reason)
			}
			if !strings.Contains(d.Reason, c.reason) {
				t.Errorf("Reason = %q, want it to contain %q", d.Reason, c.reason)
			}
			if strings.ContainsAny(d.Reason, "\n\r") || d.Reason == "" {
				t.Errorf("Reason %q is not one non-empty line", d.Reason)
			}
			if c.policy != "" && d.Policy != c.policy {
				t.Errorf("Policy = %q, want %q", d.Policy, c.policy)
			}
			if c.rule != "" && d.Rule != c.rule {
				t.Errorf("Rule = %q, want %q", d.Rule, c.rule)
			}
		})
	}
}

func TestEvaluateMatching(t *testing.T) {
	pol := func(src string) []*Policy { return []*Policy{mustParse(t, "p", src)} }
	glob := pol(`
path "transit/keys/*"      { capabilities = ["read", "list"] }
path "transit/export/app*" { capabilities = ["read"] }
`)
	plus := pol(`
path "transit/keys/+/rotate" { capabilities = ["update"] }
path "transit/+/app*"        { capabilities = ["create"] }
path "+"                     { capabilities = ["read"] }
`)
	listExact := pol(`path "transit/keys" { capabilities = ["list"] }`)
	all := pol(`path "*" { capabilities = ["read"] }`)
	runEval(t, []evalCase{
		{name: "exact", policies: pol(`path "transit/encrypt/app" { capabilities = ["update"] }`),
			req: Request{Path: "transit/encrypt/app", Capability: Update}, allowed: true,
			reason: `allowed by policy "p" rule "transit/encrypt/app"`, policy: "p", rule: "transit/encrypt/app"},
		{name: "exact is not a prefix", policies: pol(`path "transit/encrypt/app" { capabilities = ["update"] }`),
			req: Request{Path: "transit/encrypt/app2", Capability: Update}, reason: "no policy grants update on transit/encrypt/app2"},
		{name: "exact needs the whole path", policies: pol(`path "transit/encrypt/app" { capabilities = ["update"] }`),
			req: Request{Path: "transit/encrypt", Capability: Update}, reason: "no policy grants"},
		{name: "glob one level", policies: glob, req: Request{Path: "transit/keys/app", Capability: Read}, allowed: true, rule: "transit/keys/*"},
		{name: "glob any depth", policies: glob, req: Request{Path: "transit/keys/app/config", Capability: Read}, allowed: true},
		{name: "glob matches the slash itself for list", policies: glob, req: Request{Path: "transit/keys/", Capability: List}, allowed: true},
		{name: "list adds the slash", policies: glob, req: Request{Path: "transit/keys", Capability: List}, allowed: true},
		{name: "glob not the bare prefix", policies: glob, req: Request{Path: "transit/keys", Capability: Read}, reason: "no policy grants read on transit/keys"},
		{name: "glob inside a segment", policies: glob, req: Request{Path: "transit/export/app-2", Capability: Read}, allowed: true},
		{name: "glob inside a segment, deeper", policies: glob, req: Request{Path: "transit/export/apple/1", Capability: Read}, allowed: true},
		{name: "glob other prefix", policies: glob, req: Request{Path: "transit/export/ap", Capability: Read}},
		{name: "glob star matches everything", policies: all, req: Request{Path: "sys/seal-status", Capability: Read}, allowed: true},
		{name: "plus one segment", policies: plus, req: Request{Path: "transit/keys/app/rotate", Capability: Update}, allowed: true, rule: "transit/keys/+/rotate"},
		{name: "plus not zero segments", policies: plus, req: Request{Path: "transit/keys/rotate", Capability: Update}},
		{name: "plus not two segments", policies: plus, req: Request{Path: "transit/keys/a/b/rotate", Capability: Update}},
		{name: "plus not an empty segment", policies: plus, req: Request{Path: "transit/keys//rotate", Capability: Update}, reason: "empty segment"},
		{name: "plus then nothing more", policies: plus, req: Request{Path: "transit/keys/app/rotate/x", Capability: Update}},
		{name: "plus with glob", policies: plus, req: Request{Path: "transit/encrypt/app-1", Capability: Create}, allowed: true, rule: "transit/+/app*"},
		{name: "plus with glob, deeper", policies: plus, req: Request{Path: "transit/datakey/app/wrapped", Capability: Create}, allowed: true},
		{name: "plus with glob, other name", policies: plus, req: Request{Path: "transit/encrypt/web", Capability: Create}},
		{name: "plus alone, one segment", policies: plus, req: Request{Path: "transit", Capability: Read}, allowed: true, rule: "+"},
		{name: "plus alone, not two", policies: plus, req: Request{Path: "transit/keys", Capability: Read}},
		{name: "exact pattern grants list on the path with slash", policies: listExact, req: Request{Path: "transit/keys", Capability: List}, allowed: true},
		{name: "exact pattern list, path with slash", policies: listExact, req: Request{Path: "transit/keys/", Capability: List}, allowed: true},
		{name: "a trailing slash is dropped for read", policies: pol(`path "transit/keys/app" { capabilities = ["read"] }`),
			req: Request{Path: "transit/keys/app/", Capability: Read}, allowed: true},
		{name: "a trailing slash cannot dodge an exact deny", policies: pol(`
path "transit/keys/*"   { capabilities = ["read"] }
path "transit/keys/app" { capabilities = ["deny"] }`),
			req: Request{Path: "transit/keys/app/", Capability: Read}, reason: `denied by policy "p" rule "transit/keys/app"`},
		{name: "exact pattern does not grant list below", policies: listExact, req: Request{Path: "transit/keys/a", Capability: List}},
	})
}

func TestEvaluatePrecedence(t *testing.T) {
	p := func(name, src string) *Policy { return mustParse(t, name, src) }
	exactOverGlob := p("a", `
path "transit/keys/*"   { capabilities = ["read"] }
path "transit/keys/app" { capabilities = ["update"] }
`)
	longerPrefix := p("a", `
path "transit/*"      { capabilities = ["update"] }
path "transit/keys/*" { capabilities = ["read"] }
`)
	plusOverGlob := p("a", `
path "transit/keys/*"        { capabilities = ["read"] }
path "transit/keys/+/rotate" { capabilities = ["update"] }
`)
	laterWildcard := p("a", `
path "transit/+/app"     { capabilities = ["read"] }
path "transit/encrypt/*" { capabilities = ["update"] }
`)
	fewerPlus := p("a", `
path "+/+/app"       { capabilities = ["read"] }
path "+/encrypt/app" { capabilities = ["update"] }
`)
	noGlobOverGlob := p("a", `
path "transit/+/app*" { capabilities = ["read"] }
path "transit/+/app"  { capabilities = ["update"] }
`)
	denyInSame := p("a", `
path "transit/decrypt/app" { capabilities = ["update"] }
path "transit/*"           { capabilities = ["deny"] }
`)
	grantA := p("a", `path "transit/decrypt/app" { capabilities = ["update"] }`)
	denyB := p("b", `path "transit/*" { capabilities = ["deny"] }`)
	enc := p("enc", `path "transit/encrypt/app" { capabilities = ["update"] }`)
	dec := p("dec", `path "transit/decrypt/app" { capabilities = ["update"] }`)
	readKeys := p("r", `path "transit/keys/*" { capabilities = ["read"] }`)
	listKeys := p("l", `path "transit/keys/*" { capabilities = ["list"] }`)
	broad := p("broad", `path "transit/*" { capabilities = ["update"] }`)
	narrow := p("narrow", `path "transit/decrypt/app" { capabilities = ["read"] }`)
	runEval(t, []evalCase{
		{name: "exact over glob grants", policies: []*Policy{exactOverGlob}, req: Request{Path: "transit/keys/app", Capability: Update}, allowed: true, rule: "transit/keys/app"},
		{name: "exact over glob shadows", policies: []*Policy{exactOverGlob}, req: Request{Path: "transit/keys/app", Capability: Read},
			reason: `the most specific rule for transit/keys/app, policy "a" rule "transit/keys/app", does not grant read`, policy: "a", rule: "transit/keys/app"},
		{name: "glob still grants elsewhere", policies: []*Policy{exactOverGlob}, req: Request{Path: "transit/keys/web", Capability: Read}, allowed: true},
		{name: "longer prefix shadows", policies: []*Policy{longerPrefix}, req: Request{Path: "transit/keys/a", Capability: Update}, rule: "transit/keys/*"},
		{name: "shorter prefix elsewhere", policies: []*Policy{longerPrefix}, req: Request{Path: "transit/encrypt/a", Capability: Update}, allowed: true, rule: "transit/*"},
		{name: "plus over glob", policies: []*Policy{plusOverGlob}, req: Request{Path: "transit/keys/a/rotate", Capability: Update}, allowed: true},
		{name: "plus over glob shadows", policies: []*Policy{plusOverGlob}, req: Request{Path: "transit/keys/a/rotate", Capability: Read}, rule: "transit/keys/+/rotate"},
		{name: "later first wildcard wins", policies: []*Policy{laterWildcard}, req: Request{Path: "transit/encrypt/app", Capability: Update}, allowed: true, rule: "transit/encrypt/*"},
		{name: "later first wildcard shadows", policies: []*Policy{laterWildcard}, req: Request{Path: "transit/encrypt/app", Capability: Read}, rule: "transit/encrypt/*"},
		{name: "fewer plus wins", policies: []*Policy{fewerPlus}, req: Request{Path: "transit/encrypt/app", Capability: Update}, allowed: true, rule: "+/encrypt/app"},
		{name: "fewer plus shadows", policies: []*Policy{fewerPlus}, req: Request{Path: "transit/encrypt/app", Capability: Read}, rule: "+/encrypt/app"},
		{name: "no glob over glob", policies: []*Policy{noGlobOverGlob}, req: Request{Path: "transit/encrypt/app", Capability: Update}, allowed: true, rule: "transit/+/app"},
		{name: "deny wins over a more specific grant", policies: []*Policy{denyInSame}, req: Request{Path: "transit/decrypt/app", Capability: Update},
			reason: `denied by policy "a" rule "transit/*"`, policy: "a", rule: "transit/*"},
		{name: "deny wins across policies", policies: []*Policy{grantA, denyB}, req: Request{Path: "transit/decrypt/app", Capability: Update},
			reason: `denied by policy "b" rule "transit/*"`, policy: "b", rule: "transit/*"},
		{name: "deny wins whatever the order", policies: []*Policy{denyB, grantA}, req: Request{Path: "transit/decrypt/app", Capability: Update}, policy: "b"},
		{name: "deny wins over root", policies: []*Policy{Root, denyB}, req: Request{Path: "transit/keys/app", Capability: Read}, policy: "b"},
		{name: "deny does not reach other paths", policies: []*Policy{grantA, denyB}, req: Request{Path: "sys/health", Capability: Read}, reason: "no policy grants read on sys/health"},
		{name: "no match", policies: []*Policy{enc}, req: Request{Path: "transit/decrypt/app", Capability: Update},
			reason: "no policy grants update on transit/decrypt/app", policy: "", rule: ""},
		{name: "no policies", policies: nil, req: Request{Path: "transit/encrypt/app", Capability: Update}, reason: "no policy grants"},
		{name: "empty policy", policies: []*Policy{p("empty", "")}, req: Request{Path: "transit/encrypt/app", Capability: Update}, reason: "no policy grants"},
		{name: "nil policy skipped", policies: []*Policy{nil, enc}, req: Request{Path: "transit/encrypt/app", Capability: Update}, allowed: true},
		{name: "several policies: first", policies: []*Policy{enc, dec}, req: Request{Path: "transit/encrypt/app", Capability: Update}, allowed: true, policy: "enc"},
		{name: "several policies: second", policies: []*Policy{enc, dec}, req: Request{Path: "transit/decrypt/app", Capability: Update}, allowed: true, policy: "dec"},
		{name: "same pattern in two policies: union, read", policies: []*Policy{readKeys, listKeys}, req: Request{Path: "transit/keys/a", Capability: Read}, allowed: true, policy: "r"},
		{name: "same pattern in two policies: union, list", policies: []*Policy{readKeys, listKeys}, req: Request{Path: "transit/keys/", Capability: List}, allowed: true, policy: "l"},
		{name: "a more specific rule of another policy shadows", policies: []*Policy{broad, narrow}, req: Request{Path: "transit/decrypt/app", Capability: Update},
			policy: "narrow", rule: "transit/decrypt/app", reason: "does not grant update"},
		{name: "root allows", policies: []*Policy{Root}, req: Request{Path: "sys/rotate", Capability: Sudo}, allowed: true, reason: "root policy", policy: "root"},
		{name: "root with others allows", policies: []*Policy{narrow, Root}, req: Request{Path: "transit/decrypt/app", Capability: Update}, allowed: true, policy: "root"},
		{name: "zero policy grants nothing", policies: []*Policy{{Name: "zero"}}, req: Request{Path: "a", Capability: Read}},
	})
}

// "May encrypt but not decrypt" takes one rule.
func TestEvaluateEncryptOnly(t *testing.T) {
	p := []*Policy{mustParse(t, "app", `path "transit/encrypt/app" { capabilities = ["update"] }`)}
	runEval(t, []evalCase{
		{name: "encrypt", policies: p, req: Request{Path: "transit/encrypt/app", Capability: CapabilityFor("POST", "/v1/transit/encrypt/app", true)}, allowed: true},
		{name: "decrypt", policies: p, req: Request{Path: "transit/decrypt/app", Capability: CapabilityFor("POST", "/v1/transit/decrypt/app", true)}, reason: "no policy grants update on transit/decrypt/app"},
		{name: "rewrap", policies: p, req: Request{Path: "transit/rewrap/app", Capability: Update}},
		{name: "datakey", policies: p, req: Request{Path: "transit/datakey/plaintext/app", Capability: Update}},
		{name: "upsert of a missing key needs create", policies: p, req: Request{Path: "transit/encrypt/app", Capability: CapabilityFor("POST", "/v1/transit/encrypt/app", false)},
			reason: `does not grant create`},
		{name: "another key", policies: p, req: Request{Path: "transit/encrypt/web", Capability: Update}},
		{name: "read the key", policies: p, req: Request{Path: "transit/keys/app", Capability: Read}},
	})
}

func TestEvaluateConditions(t *testing.T) {
	p := func(src string) []*Policy { return []*Policy{mustParse(t, "c", src)} }
	cidr := p(`path "k/*" {
  capabilities = ["read"]
  condition { source_cidrs = ["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32"] }
}`)
	day := p(`path "k/*" {
  capabilities = ["read"]
  condition { time_window = "08:00-18:00" }
}`)
	night := p(`path "k/*" {
  capabilities = ["read"]
  condition { time_window = "22:00-06:00" }
}`)
	evening := p(`path "k/*" {
  capabilities = ["read"]
  condition { time_window = "18:00-00:00" }
}`)
	ctx := p(`path "k/*" {
  capabilities = ["read"]
  condition { required_context = { tenant = "acme", "env" = "prod" } }
}`)
	docs := []*Policy{mustParse(t, "doc", docPolicy)}
	good := Request{Path: "transit/keys/app", Capability: Read, RemoteIP: net.ParseIP("10.1.2.3"),
		Time: at("12:00:00"), Context: map[string]string{"tenant": "acme"}}
	with := func(f func(*Request)) Request { r := good; f(&r); return r }
	condDeny := p(`
path "k/*" { capabilities = ["read"] }
path "k/secret" {
  capabilities = ["deny"]
  condition { time_window = "18:00-08:00" }
}`)
	noFallback := p(`
path "k/*" { capabilities = ["read"] }
path "k/app" {
  capabilities = ["read"]
  condition { source_cidrs = ["10.0.0.0/8"] }
}`)
	orWithin := p(`
path "k/app" {
  capabilities = ["read"]
  condition { source_cidrs = ["10.0.0.0/8"] }
}
path "k/app" {
  capabilities = ["read"]
  condition { source_cidrs = ["192.168.0.0/16"] }
}`)
	orA := mustParse(t, "a", `path "k/app" {
  capabilities = ["read"]
  condition { time_window = "08:00-12:00" }
}`)
	orB := mustParse(t, "b", `path "k/app" {
  capabilities = ["read"]
  condition { time_window = "12:00-18:00" }
}`)
	req := func(ip string, tm string, kv ...string) Request {
		r := Request{Path: "k/app", Capability: Read}
		if ip != "" {
			r.RemoteIP = net.ParseIP(ip)
		}
		if tm != "" {
			r.Time = at(tm)
		}
		if kv != nil {
			r.Context = map[string]string{}
			for i := 0; i+1 < len(kv); i += 2 {
				r.Context[kv[i]] = kv[i+1]
			}
		}
		return r
	}
	runEval(t, []evalCase{
		// source_cidrs
		{name: "cidr v4 inside", policies: cidr, req: req("10.255.0.1", ""), allowed: true},
		{name: "cidr v4 second network", policies: cidr, req: req("192.168.1.77", ""), allowed: true},
		{name: "cidr v4 outside", policies: cidr, req: req("192.168.2.1", ""), reason: "source address 192.168.2.1 is not in source_cidrs [10.0.0.0/8, 192.168.1.0/24, 2001:db8::/32]"},
		{name: "cidr v4 first address", policies: cidr, req: req("10.0.0.0", ""), allowed: true},
		{name: "cidr v4 just below", policies: cidr, req: req("9.255.255.255", ""), reason: "not in source_cidrs"},
		{name: "cidr v6 inside", policies: cidr, req: req("2001:db8:1::5", ""), allowed: true},
		{name: "cidr v6 outside", policies: cidr, req: req("2001:db9::5", ""), reason: "source address 2001:db9::5"},
		{name: "cidr v4-mapped v6 is v4", policies: cidr, req: req("::ffff:10.0.0.7", ""), allowed: true},
		{name: "cidr 16-byte v4 is v4", policies: cidr, req: Request{Path: "k/app", Capability: Read, RemoteIP: net.ParseIP("10.9.9.9").To16()}, allowed: true},
		{name: "cidr no address", policies: cidr, req: req("", ""), reason: "the request has no source address"},
		{name: "cidr malformed address", policies: cidr, req: Request{Path: "k/app", Capability: Read, RemoteIP: net.IP{10, 0, 0}}, reason: "no source address"},
		// time_window
		{name: "day before", policies: day, req: req("", "07:59:59"), reason: "07:59 UTC is outside time_window 08:00-18:00"},
		{name: "day start inclusive", policies: day, req: req("", "08:00:00"), allowed: true},
		{name: "day middle", policies: day, req: req("", "12:34:56"), allowed: true},
		{name: "day last second", policies: day, req: req("", "17:59:59"), allowed: true},
		{name: "day end exclusive", policies: day, req: req("", "18:00:00"), reason: "18:00 UTC is outside"},
		{name: "day midnight", policies: day, req: req("", "00:00:00")},
		{name: "day in another zone is UTC", policies: day, req: Request{Path: "k/app", Capability: Read,
			Time: time.Date(2026, 3, 14, 9, 0, 0, 0, time.FixedZone("CEST", 2*3600))}, reason: "07:00 UTC"},
		{name: "day no time", policies: day, req: req("", ""), reason: "the request has no time"},
		{name: "night before start", policies: night, req: req("", "21:59:59")},
		{name: "night start", policies: night, req: req("", "22:00:00"), allowed: true},
		{name: "night before midnight", policies: night, req: req("", "23:59:59"), allowed: true},
		{name: "night midnight", policies: night, req: req("", "00:00:00"), allowed: true},
		{name: "night last second", policies: night, req: req("", "05:59:59"), allowed: true},
		{name: "night end exclusive", policies: night, req: req("", "06:00:00"), reason: "06:00 UTC is outside time_window 22:00-06:00"},
		{name: "night noon", policies: night, req: req("", "12:00:00")},
		{name: "to midnight: last minute", policies: evening, req: req("", "23:59:59"), allowed: true},
		{name: "to midnight: midnight", policies: evening, req: req("", "00:00:00"), reason: "outside time_window 18:00-24:00"},
		// required_context
		{name: "context present", policies: ctx, req: req("", "", "tenant", "acme", "env", "prod"), allowed: true},
		{name: "context with extra keys", policies: ctx, req: req("", "", "tenant", "acme", "env", "prod", "user", "x"), allowed: true},
		{name: "context one key absent", policies: ctx, req: req("", "", "tenant", "acme"), reason: `required_context "env" is missing`},
		{name: "context different value", policies: ctx, req: req("", "", "tenant", "acme", "env", "dev"), reason: `required_context "env" of the request is not "prod"`},
		{name: "context value is not shown", policies: ctx, req: req("", "", "tenant", "s3cret", "env", "prod")},
		{name: "context case matters", policies: ctx, req: req("", "", "Tenant", "acme", "env", "prod"), reason: `"tenant" is missing`},
		{name: "context empty value is not absent", policies: ctx, req: req("", "", "tenant", "", "env", "prod"), reason: `"tenant" of the request is not "acme"`},
		{name: "context none", policies: ctx, req: req("", ""), reason: "is missing"},
		// AND
		{name: "and: all hold", policies: docs, req: good, allowed: true, rule: "transit/*"},
		{name: "and: list too", policies: docs, req: with(func(r *Request) { r.Path, r.Capability = "transit/keys", List }), allowed: true},
		{name: "and: address fails", policies: docs, req: with(func(r *Request) { r.RemoteIP = net.ParseIP("172.16.0.1") }), reason: "source address 172.16.0.1"},
		{name: "and: time fails", policies: docs, req: with(func(r *Request) { r.Time = at("19:00:00") }), reason: "19:00 UTC is outside"},
		{name: "and: context fails", policies: docs, req: with(func(r *Request) { r.Context = map[string]string{"tenant": "other"} }), reason: `"tenant"`},
		{name: "and: all fail, first reported", policies: docs, req: Request{Path: "transit/keys/app", Capability: Read}, reason: "no source address"},
		{name: "doc: encrypt needs no conditions", policies: docs, req: Request{Path: "transit/encrypt/app", Capability: Update}, allowed: true},
		{name: "doc: decrypt denied", policies: docs, req: with(func(r *Request) { r.Path, r.Capability = "transit/decrypt/app", Update }), reason: `denied by policy "doc" rule "transit/decrypt/*"`},
		{name: "doc: decrypt read denied too", policies: docs, req: with(func(r *Request) { r.Path = "transit/decrypt/app" }), reason: `denied by policy "doc" rule "transit/decrypt/*"`},
		{name: "doc: rotate with sudo", policies: docs, req: Request{Path: "transit/keys/app/rotate", Capability: Sudo}, allowed: true},
		// conditional deny, conditions of the deciding rule, OR
		{name: "conditional deny applies", policies: condDeny, req: Request{Path: "k/secret", Capability: Read, Time: at("23:00:00")}, reason: "denied by"},
		{name: "conditional deny does not apply", policies: condDeny, req: Request{Path: "k/secret", Capability: Read, Time: at("09:00:00")}, allowed: true, rule: "k/*"},
		{name: "conditional deny without time does not apply", policies: condDeny, req: Request{Path: "k/secret", Capability: Read}, allowed: true},
		{name: "failed conditions: no fallback to a broader rule", policies: noFallback, req: req("172.16.0.1", ""),
			reason: `policy "c" rule "k/app" grants read on k/app only when its conditions hold: source address 172.16.0.1`, rule: "k/app"},
		{name: "failed conditions: held", policies: noFallback, req: req("10.0.0.1", ""), allowed: true, rule: "k/app"},
		{name: "two rules, same pattern: first", policies: orWithin, req: req("10.0.0.1", ""), allowed: true},
		{name: "two rules, same pattern: second", policies: orWithin, req: req("192.168.3.4", ""), allowed: true},
		{name: "two rules, same pattern: neither", policies: orWithin, req: req("172.16.0.1", ""), reason: "only when its conditions hold"},
		{name: "two policies: morning", policies: []*Policy{orA, orB}, req: req("", "09:00:00"), allowed: true, policy: "a"},
		{name: "two policies: afternoon", policies: []*Policy{orA, orB}, req: req("", "15:00:00"), allowed: true, policy: "b"},
		{name: "two policies: evening", policies: []*Policy{orA, orB}, req: req("", "20:00:00"), policy: "a"},
	})
}

func TestEvaluateContextValueNotInReason(t *testing.T) {
	p := []*Policy{mustParse(t, "c", `path "k" {
  capabilities = ["read"]
  condition { required_context = { tenant = "acme" } }
}`)}
	d := Evaluate(p, Request{Path: "k", Capability: Read, Context: map[string]string{"tenant": "s3cret-value"}})
	if d.Allowed || strings.Contains(d.Reason, "s3cret") {
		t.Fatalf("decision %+v", d)
	}
}

func TestEvaluateMalformedRequest(t *testing.T) {
	all := []*Policy{Root}
	for _, c := range []struct{ path, capability, reason string }{
		{"transit/keys/app", "", `unknown capability ""`},
		{"transit/keys/app", "deny", `unknown capability "deny"`},
		{"transit/keys/app", "write", `unknown capability "write"`},
		{"transit/keys/app", "READ", `unknown capability "READ"`},
		{"", Read, "is empty"},
		{"/transit/keys/app", Read, `starts with "/"`},
		{"/v1/transit/keys/app", Read, `starts with "/"`},
		{"transit//keys", Read, "empty segment"},
		{"transit/keys/../../sys/rotate", Read, `"." or ".."`},
		{"transit/./keys", Read, `"." or ".."`},
		{"transit/keys/..", Read, `"." or ".."`},
		{"transit/keys/app\n", Read, "control character"},
		{"transit/keys/app\x00", Read, "control character"},
	} {
		d := Evaluate(all, Request{Path: c.path, Capability: c.capability})
		if d.Allowed || !strings.Contains(d.Reason, c.reason) || strings.ContainsAny(d.Reason, "\n\x00") {
			t.Errorf("Evaluate(%q, %q) = %+v, want denied with %q", c.path, c.capability, d, c.reason)
		}
	}
}

// Policies are immutable: evaluating from many goroutines at once is safe
// (run with -race).
func TestEvaluateConcurrent(t *testing.T) {
	pols := []*Policy{mustParse(t, "doc", docPolicy), mustParse(t, "b", `path "transit/keys/*" { capabilities = ["read"] }`)}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				Evaluate(pols, Request{Path: "transit/keys/app", Capability: Read, RemoteIP: net.ParseIP("10.0.0.1"), Time: at("09:00:00")})
				_ = pols[0].String()
			}
		}()
	}
	wg.Wait()
}

// TestEvaluateRefused: a denial says whether a policy decided it (a deny
// rule, a failed condition, a malformed request) or nothing granted the
// capability, so that a just-in-time grant lifts only the latter.
func TestEvaluateRefused(t *testing.T) {
	p := mustParse(t, "p", `
path "transit/decrypt/deny" { capabilities = ["deny"] }
path "transit/decrypt/cidr" {
  capabilities = ["update"]
  condition { source_cidrs = ["10.0.0.0/8"] }
}
path "transit/decrypt/read" { capabilities = ["read"] }
path "transit/decrypt/ok" { capabilities = ["update"] }`)
	ip := net.ParseIP("192.0.2.1")
	for path, refused := range map[string]bool{
		"transit/decrypt/deny": true, "transit/decrypt/cidr": true, "transit/../x": true,
		"transit/decrypt/read": false, "transit/decrypt/none": false,
	} {
		d := Evaluate([]*Policy{p}, Request{Path: path, Capability: Update, RemoteIP: ip, Time: at("12:00:00")})
		if d.Allowed || d.Refused != refused {
			t.Errorf("%s: %+v, want refused=%v", path, d, refused)
		}
	}
	if d := Evaluate([]*Policy{p}, Request{Path: "transit/decrypt/ok", Capability: Update}); !d.Allowed || d.Refused {
		t.Errorf("allowed: %+v", d)
	}
}
