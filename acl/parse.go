package acl

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Limits that keep hostile or mistaken policies cheap to parse and to
// evaluate. Evaluate's cost grows with the number of rules of a token's
// policies; a real policy has a few dozen.
const (
	MaxPolicySize = 128 << 10 // bytes of source
	MaxRules      = 1000      // path blocks in one policy

	maxNameLen     = 128 // bytes of a policy name
	maxPatternLen  = 512 // bytes of a path pattern
	maxConditions  = 16  // condition tests in one path block
	maxCIDRs       = 256 // networks in one source_cidrs
	maxContextKeys = 32  // pairs in one required_context
	maxContextLen  = 256 // bytes of a required_context key or value
	maxNesting     = 32  // open brackets, braces and parentheses
)

// ParseError is a mistake in a policy. Its message is one line that starts
// with the policy name and the position, and names the field:
//
//	ops:4,18: capabilities in path "transit/*": unknown capability "raed"; did you mean "read"?
type ParseError struct {
	Policy string // the policy name as given to Parse
	Line   int    // from 1; 0 when the error is about the name
	Column int    // from 1, in bytes
	Field  string // "path", "capabilities", "condition", "source_cidrs", "time_window", "required_context", "name" or "" for syntax
	Msg    string // the message, without the position
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("policy name %s: %s", quoteShort(e.Policy), e.Msg)
	}
	return fmt.Sprintf("%s:%d,%d: %s", e.Policy, e.Line, e.Column, e.Msg)
}

// Parse parses the source of the policy called name. See the package
// documentation for the language. Every mistake is an error; nothing is
// ignored.
func Parse(name string, src []byte) (*Policy, error) {
	if msg := checkName(name); msg != "" {
		return nil, &ParseError{Policy: name, Field: "name", Msg: msg}
	}
	p := &parser{name: name}
	if len(src) > MaxPolicySize {
		return nil, p.errPos(1, 1, "", fmt.Sprintf("the policy is %d bytes; the limit is %d", len(src), MaxPolicySize))
	}
	if t := bytes.TrimLeft(src, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return nil, p.errPos(1, 1, "", "JSON policies are not supported; write the policy in HCL: path \"…\" { capabilities = […] }")
	}
	if err := p.checkNesting(src); err != nil {
		return nil, err
	}
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, p.diagError(diags)
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok { // not with hclsyntax; refuse rather than panic
		return nil, p.errPos(1, 1, "", "not an HCL policy")
	}
	pol := &Policy{Name: name}
	for _, it := range items(body) {
		if a := it.attr; a != nil {
			if a.Name == "path" {
				return nil, p.errAt(a.NameRange, "path", `"path" is a block, not an argument: write path "transit/keys/app" { capabilities = ["read"] }`)
			}
			return nil, p.errAt(a.NameRange, a.Name, fmt.Sprintf("unsupported argument %q; a policy holds only path \"…\" { … } blocks", a.Name))
		}
		b := it.block
		if b.Type != "path" {
			return nil, p.errAt(b.TypeRange, b.Type, fmt.Sprintf("unsupported block type %q; a policy holds only path \"…\" { … } blocks%s", b.Type, suggest(b.Type, "path")))
		}
		if len(pol.rules) == MaxRules {
			return nil, p.errAt(b.TypeRange, "path", fmt.Sprintf("more than %d path blocks in one policy", MaxRules))
		}
		r, err := p.path(b)
		if err != nil {
			return nil, err
		}
		pol.rules = append(pol.rules, r)
	}
	return pol, nil
}

// parser holds what error messages need.
type parser struct {
	name string
}

func (p *parser) errPos(line, col int, field, msg string) error {
	return &ParseError{Policy: p.name, Line: line, Column: col, Field: field, Msg: msg}
}

func (p *parser) errAt(rng hcl.Range, field, msg string) error {
	return p.errPos(rng.Start.Line, rng.Start.Column, field, msg)
}

// item is an argument or a block of a body.
type item struct {
	attr  *hclsyntax.Attribute
	block *hclsyntax.Block
}

// items returns the arguments and blocks of body in source order, so that
// the first mistake in the file is the one reported.
func items(body *hclsyntax.Body) []item {
	type pos struct {
		at int
		item
	}
	all := make([]pos, 0, len(body.Attributes)+len(body.Blocks))
	for _, a := range body.Attributes {
		all = append(all, pos{a.SrcRange.Start.Byte, item{attr: a}})
	}
	for _, b := range body.Blocks {
		all = append(all, pos{b.TypeRange.Start.Byte, item{block: b}})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
	out := make([]item, len(all))
	for i := range all {
		out[i] = all[i].item
	}
	return out
}

// vaultOnly are the arguments and blocks of a Vault path block that
// keyraft does not implement. Ignoring one would grant more than the
// policy says, so each is an error.
var vaultOnly = map[string]bool{
	"allowed_parameters":    true,
	"denied_parameters":     true,
	"required_parameters":   true,
	"min_wrapping_ttl":      true,
	"max_wrapping_ttl":      true,
	"control_group":         true,
	"mfa_methods":           true,
	"subscribe_event_types": true,
}

// path decodes one path block into a rule.
func (p *parser) path(b *hclsyntax.Block) (rule, error) {
	if len(b.Labels) != 1 {
		return rule{}, p.errAt(b.DefRange(), "path", `path block needs one label, the path pattern, as in path "transit/encrypt/app" { … }`)
	}
	pattern := b.Labels[0]
	if msg := checkPattern(pattern); msg != "" {
		return rule{}, p.errAt(b.LabelRanges[0], "path", fmt.Sprintf("path pattern %s %s", quoteShort(pattern), msg))
	}
	r := newRule(pattern)
	where := fmt.Sprintf(" in path %s", quoteShort(pattern))
	seenCaps := false
	for _, it := range items(b.Body) {
		if a := it.attr; a != nil {
			switch {
			case a.Name == "capabilities":
				caps, err := p.capabilities(a, where)
				if err != nil {
					return rule{}, err
				}
				r.caps, seenCaps = caps, true
			case a.Name == "condition":
				return rule{}, p.errAt(a.NameRange, "condition", fmt.Sprintf(`"condition"%s is a block, not an argument: write condition { source_cidrs = ["10.0.0.0/8"] }`, where))
			case a.Name == "policy":
				return rule{}, p.errAt(a.NameRange, "policy", fmt.Sprintf(`policy%s is Vault's old syntax, not supported: write capabilities = ["read", "list"]`, where))
			case vaultOnly[a.Name]:
				return rule{}, p.errAt(a.NameRange, a.Name, fmt.Sprintf("%s%s is a Vault feature keyraft does not support; the policy is refused rather than grant more than it says", a.Name, where))
			default:
				return rule{}, p.errAt(a.NameRange, a.Name, fmt.Sprintf("unsupported argument %q%s%s", a.Name, where, suggest(a.Name, "capabilities")))
			}
			continue
		}
		cb := it.block
		switch {
		case cb.Type == "condition":
			if err := p.condition(cb, &r, where); err != nil {
				return rule{}, err
			}
		case cb.Type == "capabilities":
			return rule{}, p.errAt(cb.TypeRange, "capabilities", fmt.Sprintf(`"capabilities"%s is an argument, not a block: write capabilities = ["read"]`, where))
		case vaultOnly[cb.Type]:
			return rule{}, p.errAt(cb.TypeRange, cb.Type, fmt.Sprintf("%s%s is a Vault feature keyraft does not support; the policy is refused rather than grant more than it says", cb.Type, where))
		default:
			return rule{}, p.errAt(cb.TypeRange, cb.Type, fmt.Sprintf("unsupported block type %q%s%s", cb.Type, where, suggest(cb.Type, "condition")))
		}
	}
	if !seenCaps {
		return rule{}, p.errAt(b.DefRange(), "capabilities", fmt.Sprintf(`capabilities is missing%s: add capabilities = ["read"] or another list`, where))
	}
	return r, nil
}

// capabilities decodes the capabilities argument.
func (p *parser) capabilities(a *hclsyntax.Attribute, where string) (capSet, error) {
	field := "capabilities" + where
	vals, rngs, err := p.stringList(a, field)
	if err != nil {
		return 0, err
	}
	if len(vals) == 0 {
		return 0, p.errAt(a.Expr.Range(), "capabilities", field+` is empty; to refuse access write ["deny"]`)
	}
	var caps capSet
	for i, v := range vals {
		bit := capBit(v)
		if bit == 0 {
			var hint string
			switch v {
			case "write":
				hint = `; Vault's "write" is "create" and "update"`
			case "root":
				hint = `; only the built-in root policy grants everything`
			default:
				hint = suggest(v, capNames[:]...)
				if hint == "" {
					hint = "; capabilities are " + strings.Join(capNames[:len(capNames)-1], ", ") + " and deny"
				}
			}
			return 0, p.errAt(rngs[i], "capabilities", fmt.Sprintf("%s: unknown capability %s%s", field, quoteShort(v), hint))
		}
		caps |= bit
	}
	if caps&capDeny != 0 && caps != capDeny {
		return 0, p.errAt(a.Expr.Range(), "capabilities", field+`: "deny" with other capabilities; a deny rule refuses every capability, so write ["deny"] alone`)
	}
	return caps, nil
}

// condition decodes a condition block: one or more tests that must all
// hold. in is ` in path "…"`.
func (p *parser) condition(b *hclsyntax.Block, r *rule, in string) error {
	where := " in a condition of" + strings.TrimPrefix(in, " in")
	if len(b.Labels) != 0 {
		return p.errAt(b.LabelRanges[0], "condition", "condition block"+in+" takes no label")
	}
	if len(b.Body.Blocks) == 0 && len(b.Body.Attributes) == 0 {
		return p.errAt(b.DefRange(), "condition", "empty condition block"+in+"; it needs source_cidrs, time_window or required_context")
	}
	for _, it := range items(b.Body) {
		if cb := it.block; cb != nil {
			return p.errAt(cb.TypeRange, cb.Type, fmt.Sprintf("unsupported block type %q%s; a condition holds source_cidrs, time_window and required_context", cb.Type, where))
		}
		a := it.attr
		if len(r.conds) == maxConditions {
			return p.errAt(a.NameRange, a.Name, fmt.Sprintf("%s%s: more than %d conditions in one path block", a.Name, where, maxConditions))
		}
		var c condition
		var err error
		switch a.Name {
		case "source_cidrs":
			c, err = p.sourceCIDRs(a, where)
		case "time_window":
			c, err = p.timeWindow(a, where)
		case "required_context":
			c, err = p.requiredContext(a, where)
		default:
			err = p.errAt(a.NameRange, a.Name, fmt.Sprintf("unsupported argument %q%s%s", a.Name, where,
				suggest(a.Name, "source_cidrs", "time_window", "required_context")))
		}
		if err != nil {
			return err
		}
		r.conds = append(r.conds, c)
	}
	return nil
}

func (p *parser) sourceCIDRs(a *hclsyntax.Attribute, where string) (condition, error) {
	field := "source_cidrs" + where
	vals, rngs, err := p.stringList(a, field)
	if err != nil {
		return condition{}, err
	}
	switch {
	case len(vals) == 0:
		return condition{}, p.errAt(a.Expr.Range(), "source_cidrs", field+` is empty; list networks such as ["10.0.0.0/8", "2001:db8::/32"]`)
	case len(vals) > maxCIDRs:
		return condition{}, p.errAt(a.Expr.Range(), "source_cidrs", fmt.Sprintf("%s lists more than %d networks", field, maxCIDRs))
	}
	c := condition{kind: condSource, cidrs: make([]netip.Prefix, len(vals))}
	for i, v := range vals {
		bad := func(msg string) error {
			return p.errAt(rngs[i], "source_cidrs", fmt.Sprintf("%s: %s %s", field, quoteShort(v), msg))
		}
		pfx, err := netip.ParsePrefix(v)
		if err != nil {
			if addr, err := netip.ParseAddr(v); err == nil && addr.Zone() == "" {
				return condition{}, bad(fmt.Sprintf("is an address, not a network: write %q", netip.PrefixFrom(addr, addr.BitLen())))
			}
			return condition{}, bad(`is not a network in CIDR notation such as "10.0.0.0/8" or "2001:db8::/32"`)
		}
		if pfx.Addr().Is4In6() {
			return condition{}, bad("is an IPv4-mapped IPv6 network: write the IPv4 network; IPv4-mapped addresses are checked as IPv4")
		}
		if m := pfx.Masked(); m != pfx {
			return condition{}, bad(fmt.Sprintf("has bits set past the prefix length: did you mean %q?", m))
		}
		c.cidrs[i] = pfx
	}
	return c, nil
}

func (p *parser) timeWindow(a *hclsyntax.Attribute, where string) (condition, error) {
	field := "time_window" + where
	v, err := p.value(a.Expr, field, "time_window")
	if err != nil {
		return condition{}, err
	}
	if v.Type() != cty.String {
		return condition{}, p.errAt(a.Expr.Range(), "time_window", fmt.Sprintf(`%s must be a string such as "08:00-18:00", not %s`, field, v.Type().FriendlyName()))
	}
	s := v.AsString()
	start, end, msg := parseWindow(s)
	if msg != "" {
		return condition{}, p.errAt(a.Expr.Range(), "time_window", fmt.Sprintf("%s: %s %s", field, quoteShort(s), msg))
	}
	return condition{kind: condTime, start: start, end: end}, nil
}

func (p *parser) requiredContext(a *hclsyntax.Attribute, where string) (condition, error) {
	field := "required_context" + where
	bad := func(rng hcl.Range, msg string) error {
		return p.errAt(rng, "required_context", field+": "+msg)
	}
	type entry struct {
		key, val       cty.Value
		keyRng, valRng hcl.Range
	}
	var entries []entry
	if obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr); ok {
		// Walk the items so that each mistake has its own position and
		// a key given twice is an error, not "the last one wins".
		for _, it := range obj.Items {
			k, err := p.value(it.KeyExpr, field, "required_context")
			if err != nil {
				return condition{}, err
			}
			v, err := p.value(it.ValueExpr, field, "required_context")
			if err != nil {
				return condition{}, err
			}
			entries = append(entries, entry{k, v, it.KeyExpr.Range(), it.ValueExpr.Range()})
		}
	} else {
		v, err := p.value(a.Expr, field, "required_context")
		if err != nil {
			return condition{}, err
		}
		if !v.Type().IsObjectType() && !v.Type().IsMapType() {
			return condition{}, bad(a.Expr.Range(), fmt.Sprintf(`must be a map such as { tenant = "acme" }, not %s`, v.Type().FriendlyName()))
		}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			entries = append(entries, entry{k, e, a.Expr.Range(), a.Expr.Range()})
		}
	}
	switch {
	case len(entries) == 0:
		return condition{}, bad(a.Expr.Range(), `is empty; name the keys and values, as in { tenant = "acme" }`)
	case len(entries) > maxContextKeys:
		return condition{}, bad(a.Expr.Range(), fmt.Sprintf("more than %d keys", maxContextKeys))
	}
	c := condition{kind: condContext, ctx: make([]kv, 0, len(entries))}
	seen := map[string]hcl.Range{}
	for _, e := range entries {
		if e.key.Type() != cty.String {
			return condition{}, bad(e.keyRng, fmt.Sprintf("a key must be a string, not %s", e.key.Type().FriendlyName()))
		}
		key := e.key.AsString()
		switch {
		case key == "":
			return condition{}, bad(e.keyRng, "a key is empty")
		case len(key) > maxContextLen:
			return condition{}, bad(e.keyRng, fmt.Sprintf("key %s is longer than %d bytes", quoteShort(key), maxContextLen))
		case !validText(key):
			return condition{}, bad(e.keyRng, fmt.Sprintf("key %s contains a control character or is not valid UTF-8", quoteShort(key)))
		}
		if first, dup := seen[key]; dup {
			return condition{}, bad(e.keyRng, fmt.Sprintf("key %s is given twice; the first is on line %d", quoteShort(key), first.Start.Line))
		}
		seen[key] = e.keyRng
		if e.val.IsNull() {
			return condition{}, bad(e.valRng, fmt.Sprintf("the value of %s is null", quoteShort(key)))
		}
		if e.val.Type() != cty.String {
			return condition{}, bad(e.valRng, fmt.Sprintf("the value of %s must be a string, not %s", quoteShort(key), e.val.Type().FriendlyName()))
		}
		val := e.val.AsString()
		switch {
		case len(val) > maxContextLen:
			return condition{}, bad(e.valRng, fmt.Sprintf("the value of %s is longer than %d bytes", quoteShort(key), maxContextLen))
		case !validText(val):
			return condition{}, bad(e.valRng, fmt.Sprintf("the value of %s contains a control character or is not valid UTF-8", quoteShort(key)))
		}
		c.ctx = append(c.ctx, kv{key, val})
	}
	sort.Slice(c.ctx, func(i, j int) bool { return c.ctx[i].key < c.ctx[j].key })
	return c, nil
}

// stringList decodes a list of strings, with the position of each.
func (p *parser) stringList(a *hclsyntax.Attribute, field string) ([]string, []hcl.Range, error) {
	fieldName := a.Name
	v, err := p.value(a.Expr, field, fieldName)
	if err != nil {
		return nil, nil, err
	}
	t := v.Type()
	if !t.IsTupleType() && !t.IsListType() {
		return nil, nil, p.errAt(a.Expr.Range(), fieldName, fmt.Sprintf(`%s must be a list of strings such as ["read"], not %s`, field, t.FriendlyName()))
	}
	var elemRngs []hcl.Range
	if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && len(tup.Exprs) == v.LengthInt() {
		for _, e := range tup.Exprs {
			elemRngs = append(elemRngs, e.Range())
		}
	}
	var vals []string
	var rngs []hcl.Range
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, e := it.Element()
		rng := a.Expr.Range()
		if elemRngs != nil {
			rng = elemRngs[i]
		}
		if e.IsNull() || e.Type() != cty.String {
			shown := "null"
			if !e.IsNull() {
				shown = e.Type().FriendlyName()
			}
			return nil, nil, p.errAt(rng, fieldName, fmt.Sprintf("%s must be a list of strings; item %d is %s", field, i+1, shown))
		}
		vals = append(vals, e.AsString())
		rngs = append(rngs, rng)
	}
	return vals, rngs, nil
}

// value evaluates an expression, which may not use variables or
// functions.
func (p *parser) value(e hclsyntax.Expression, field, fieldName string) (cty.Value, error) {
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		d := firstError(diags)
		rng := e.Range()
		if d.Subject != nil {
			rng = *d.Subject
		}
		return cty.NilVal, p.errAt(rng, fieldName, fmt.Sprintf("%s: %s", field, describe(d)))
	}
	if v.IsNull() {
		return cty.NilVal, p.errAt(e.Range(), fieldName, field+" is null")
	}
	if !v.IsWhollyKnown() { // not without variables; refuse rather than panic
		return cty.NilVal, p.errAt(e.Range(), fieldName, field+" has no known value")
	}
	return v, nil
}

// checkNesting refuses input nested more than maxNesting brackets deep
// before the HCL parser, which recurses once per level, sees it. It does
// not skip strings or comments, so it may overcount, never undercount.
func (p *parser) checkNesting(src []byte) error {
	depth, line, col := 0, 1, 1
	for _, b := range src {
		switch b {
		case '(', '[', '{':
			depth++
			if depth > maxNesting {
				return p.errPos(line, col, "", fmt.Sprintf("nested more than %d levels deep", maxNesting))
			}
		case ')', ']', '}':
			depth = max(depth-1, 0)
		}
		col++
		if b == '\n' {
			line, col = line+1, 1
		}
	}
	return nil
}

// diagError turns HCL's diagnostics into one line: the position and
// summary of the first error in the source.
func (p *parser) diagError(diags hcl.Diagnostics) error {
	d := firstError(diags)
	if d.Subject != nil {
		return p.errAt(*d.Subject, "", describe(d))
	}
	return p.errPos(1, 1, "", describe(d))
}

func firstError(diags hcl.Diagnostics) *hcl.Diagnostic {
	var first *hcl.Diagnostic
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if first == nil || (d.Subject != nil && (first.Subject == nil || d.Subject.Start.Byte < first.Subject.Start.Byte)) {
			first = d
		}
	}
	return first
}

// describe is the summary of a diagnostic in lower case, plus the first
// sentence of its detail when that names something (holds a quote).
func describe(d *hcl.Diagnostic) string {
	if m := redefined.FindStringSubmatch(d.Detail); m != nil {
		return fmt.Sprintf("argument %s is set twice; the first is on line %s", m[1], m[2])
	}
	msg := lowerFirst(oneLine(d.Summary))
	detail := oneLine(d.Detail)
	if i := strings.Index(detail, ". "); i >= 0 {
		detail = detail[:i]
	}
	detail = strings.TrimSuffix(detail, ".")
	if strings.Contains(detail, `"`) {
		msg += ": " + lowerFirst(detail)
	}
	return msg
}

// redefined matches HCL's detail for an argument set twice.
var redefined = regexp.MustCompile(`^The argument ("[^"]*") was already set at [^:]*:(\d+),`)

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' || (len(s) > 1 && s[1] >= 'A' && s[1] <= 'Z') {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

// checkName returns why a policy name is not acceptable, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxNameLen:
		return fmt.Sprintf("is longer than %d bytes", maxNameLen)
	case strings.EqualFold(name, "root"):
		return `"root" is the built-in policy of the root token and cannot be written`
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "contains white space or a control character"
		}
	}
	return ""
}

// validText reports whether s is valid UTF-8 without control characters.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// suggest returns `; did you mean "x"?` when name looks like a typo of one
// of names, or "".
func suggest(name string, names ...string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(name, n); d < bestDist || (d == bestDist && n < best) {
			best, bestDist = n, d
		}
	}
	if best == "" || bestDist > len(name)/2 {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 { // names are short; keep hostile input cheap
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// quoteShort quotes a user's string for a message: Go syntax, so control
// characters cannot break the line, and at most 60 bytes of it.
func quoteShort(s string) string {
	if len(s) > 60 {
		cut := 60
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

func itoa(n int) string { return strconv.Itoa(n) }
