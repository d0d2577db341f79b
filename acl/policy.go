package acl

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Capability names, as Vault spells them. A Request asks for one of the
// first seven; Deny appears only in policies.
const (
	Create = "create"
	Read   = "read"
	Update = "update"
	Patch  = "patch"
	Delete = "delete"
	List   = "list"
	Sudo   = "sudo"
	Deny   = "deny"
)

// capSet is a set of capabilities, one bit each, in capNames order.
type capSet uint8

// capNames is the canonical order of capabilities: Vault's.
var capNames = [...]string{Create, Read, Update, Patch, Delete, List, Sudo, Deny}

const capDeny capSet = 1 << 7

// capBit returns the bit of a capability name, or 0 for an unknown one.
func capBit(name string) capSet {
	for i, n := range capNames {
		if n == name {
			return 1 << i
		}
	}
	return 0
}

// Policy is a named, parsed set of rules. A Policy is immutable: Evaluate
// and String may be called from any number of goroutines.
type Policy struct {
	Name string

	rules []rule
	root  bool
}

// Root is the policy of the root token: it grants every capability on
// every path. It is the one policy that is not written in the policy
// language; Parse refuses the name "root". See the package documentation
// for how it combines with deny rules.
var Root = &Policy{Name: "root", root: true}

// rule is one path block.
type rule struct {
	pattern string // as written: "transit/keys/+/rotate", "transit/*"
	lit     string // pattern less a trailing "*"
	prefix  bool   // the pattern ends with "*"
	// segs is lit split at "/" when the pattern has a "+" segment, else
	// nil; a "+" entry matches any one non-empty segment.
	segs  []string
	caps  capSet
	conds []condition
	// Precomputed for the precedence of patterns (see beats).
	firstWild int // byte offset of the first "+" or "*"; len(pattern) if none
	plusCount int
}

// condKind says which test a condition is.
type condKind uint8

const (
	condSource  condKind = iota + 1 // source_cidrs
	condTime                        // time_window
	condContext                     // required_context
)

// condition is one test of a rule; all of a rule's conditions must hold.
type condition struct {
	kind  condKind
	cidrs []netip.Prefix // condSource: the address is in one of them
	// condTime: minutes since 00:00 UTC; start in [0, 1440), end in
	// (0, 1440], start != end. start > end wraps past midnight.
	start, end int
	ctx        []kv // condContext: sorted by key, keys distinct
}

type kv struct{ key, value string }

// String returns the canonical source of the policy: what Parse would
// accept to build an equal policy, one path block per rule in the order
// of the source, capabilities in Vault's order, one condition block per
// test, context keys sorted, CIDRs as network addresses.
func (p *Policy) String() string {
	if p.root {
		return "# root: the built-in policy of the root token; it grants every capability on every path\n"
	}
	var b strings.Builder
	for i := range p.rules {
		if i > 0 {
			b.WriteByte('\n')
		}
		p.rules[i].write(&b)
	}
	return b.String()
}

func (r *rule) write(b *strings.Builder) {
	fmt.Fprintf(b, "path %s {\n  capabilities = [", quote(r.pattern))
	first := true
	for i, n := range capNames {
		if r.caps&(1<<i) != 0 {
			if !first {
				b.WriteString(", ")
			}
			b.WriteString(quote(n))
			first = false
		}
	}
	b.WriteString("]\n")
	for i := range r.conds {
		c := &r.conds[i]
		b.WriteString("  condition {\n")
		switch c.kind {
		case condSource:
			b.WriteString("    source_cidrs = [")
			for j, pfx := range c.cidrs {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString(quote(pfx.String()))
			}
			b.WriteString("]\n")
		case condTime:
			fmt.Fprintf(b, "    time_window = %s\n", quote(c.window()))
		case condContext:
			b.WriteString("    required_context = {\n")
			for _, e := range c.ctx {
				fmt.Fprintf(b, "      %s = %s\n", quote(e.key), quote(e.value))
			}
			b.WriteString("    }\n")
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
}

// window returns a time window as written: "08:00-18:00".
func (c *condition) window() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", c.start/60, c.start%60, c.end/60, c.end%60)
}

// quote writes s as an HCL string literal. Parse admits no control
// characters and only valid UTF-8, so only quotes, backslashes and the
// template introducers ${ and %{ need escaping.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case (r == '$' || r == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteRune(r)
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r == utf8.RuneError && size == 1):
			// Not produced by Parse; kept readable and one line for
			// policies built some other way.
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}

// NeedsContext reports whether a rule of p has a required_context
// condition, so that a caller decodes a request's context only for the
// tokens whose policies look at it.
func (p *Policy) NeedsContext() bool {
	for i := range p.rules {
		for j := range p.rules[i].conds {
			if p.rules[i].conds[j].kind == condContext {
				return true
			}
		}
	}
	return false
}
