package acl

import (
	"strings"
)

// newRule builds the matching part of a rule from a pattern that
// checkPattern accepted.
func newRule(pattern string) rule {
	r := rule{pattern: pattern, lit: pattern, firstWild: len(pattern)}
	if strings.HasSuffix(pattern, "*") {
		r.prefix = true
		r.lit = pattern[:len(pattern)-1]
		r.firstWild = len(r.lit)
	}
	segs := strings.Split(r.lit, "/")
	off := 0
	for _, s := range segs {
		if s == "+" {
			if r.plusCount == 0 {
				r.firstWild = off
			}
			r.plusCount++
		}
		off += len(s) + 1
	}
	if r.plusCount > 0 {
		r.segs = segs
	}
	return r
}

// checkPattern returns why a path pattern is not acceptable, or "".
func checkPattern(s string) string {
	switch {
	case s == "":
		return `is empty; "*" matches every path`
	case len(s) > maxPatternLen:
		return "is longer than " + itoa(maxPatternLen) + " bytes"
	case !validText(s):
		return "contains a control character or is not valid UTF-8"
	case strings.HasPrefix(s, "/"):
		return `starts with "/": a pattern is a Vault path without the leading slash or /v1/, as in "transit/keys/app"`
	}
	if i := strings.IndexByte(s, '*'); i >= 0 && i != len(s)-1 {
		return `has "*" before its end: "*" is a glob only as the last character, as in "transit/keys/*"`
	}
	lit, glob := strings.CutSuffix(s, "*")
	segs := strings.Split(lit, "/")
	last := len(segs) - 1
	for i, seg := range segs {
		switch {
		case seg == "" && i != last:
			return `has an empty segment ("//")`
		case (seg == "." || seg == "..") && !(glob && i == last):
			return `has a "." or ".." segment, which no request path has`
		case seg == "+" && glob && i == last:
			return `ends with "+*": write "+/*" for paths under any one segment, or "*"`
		case seg != "+" && strings.Contains(seg, "+"):
			return `has "+" inside a segment: "+" stands for a whole segment, as in "transit/keys/+/rotate"`
		}
	}
	return ""
}

// match reports whether path matches the rule's pattern: equal to it; or,
// with a trailing "*", starting with the rest of it; where each "+"
// segment of the pattern stands for any one non-empty segment. For a list
// request, whose path ends in "/", an exact pattern also matches the path
// without that "/", as in Vault: path "transit/keys" grants list on
// transit/keys/.
func (r *rule) match(path string, list bool) bool {
	if r.segs == nil {
		if r.prefix {
			return strings.HasPrefix(path, r.lit)
		}
		return path == r.lit || (list && len(path) == len(r.lit)+1 && strings.HasPrefix(path, r.lit))
	}
	rest := path
	last := len(r.segs) - 1
	for i, seg := range r.segs {
		j := strings.IndexByte(rest, '/')
		var part string
		switch {
		case i < last:
			if j < 0 {
				return false
			}
			part, rest = rest[:j], rest[j+1:]
		case r.prefix: // the last segment of a glob is never "+"
			return strings.HasPrefix(rest, seg)
		default:
			if j >= 0 {
				return false
			}
			part = rest
		}
		if seg == "+" {
			if part == "" {
				return false
			}
		} else if part != seg {
			return false
		}
	}
	return true
}

// beats reports whether pattern a is more specific than pattern b, by
// Vault's rules for two patterns that match the same path:
//
//  1. a pattern without "+" or "*" (exact) beats one with;
//  2. the pattern whose first "+" or "*" comes later beats the other;
//  3. a pattern without a trailing "*" beats one with;
//  4. the pattern with fewer "+" segments beats the other;
//  5. the longer pattern beats the shorter;
//  6. the pattern greater in byte order beats the other.
//
// Only equal patterns tie.
func beats(a, b *rule) bool {
	ae, be := a.exact(), b.exact()
	switch {
	case ae != be:
		return ae
	case a.firstWild != b.firstWild:
		return a.firstWild > b.firstWild
	case a.prefix != b.prefix:
		return !a.prefix
	case a.plusCount != b.plusCount:
		return a.plusCount < b.plusCount
	case len(a.pattern) != len(b.pattern):
		return len(a.pattern) > len(b.pattern)
	}
	return a.pattern > b.pattern
}

func (r *rule) exact() bool { return !r.prefix && r.plusCount == 0 }

// checkPath returns why a request path is not in the canonical form
// Evaluate takes, or "". A router that cleaned the path after the check
// could otherwise serve a path other than the one checked.
func checkPath(p string) string {
	if p == "" {
		return "is empty"
	}
	if p[0] == '/' {
		return `starts with "/"; Evaluate takes the Vault path without the leading slash or /v1/`
	}
	segStart := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c < 0x20 || c == 0x7f {
				return "contains a control character"
			}
			if c != '/' {
				continue
			}
		}
		seg := p[segStart:i]
		switch {
		case seg == "" && i < len(p):
			return `has an empty segment ("//")`
		case seg == "." || seg == "..":
			return `has a "." or ".." segment`
		}
		segStart = i + 1
	}
	return ""
}
