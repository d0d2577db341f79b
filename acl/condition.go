package acl

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// facts are what conditions look at, derived from a Request once and only
// when a condition needs them.
type facts struct {
	ip  net.IP
	at  time.Time
	ctx map[string]string

	addrDone bool
	addr     netip.Addr // invalid when the request has no usable address

	timeDone bool
	minute   int // minutes since 00:00 UTC; -1 when the request has no time
}

func (f *facts) address() netip.Addr {
	if !f.addrDone {
		f.addrDone = true
		if a, ok := netip.AddrFromSlice(f.ip); ok {
			f.addr = a.Unmap()
		}
	}
	return f.addr
}

func (f *facts) minuteOfDay() int {
	if !f.timeDone {
		f.timeDone = true
		f.minute = -1
		if !f.at.IsZero() {
			h, m, _ := f.at.UTC().Clock()
			f.minute = h*60 + m
		}
	}
	return f.minute
}

// holds reports whether every condition of r holds; when one does not, it
// returns that one.
func (r *rule) holds(f *facts) (bool, *condition) {
	for i := range r.conds {
		if c := &r.conds[i]; !c.holds(f) {
			return false, c
		}
	}
	return true, nil
}

func (c *condition) holds(f *facts) bool {
	switch c.kind {
	case condSource:
		a := f.address()
		if !a.IsValid() {
			return false
		}
		for _, p := range c.cidrs {
			if p.Contains(a) {
				return true
			}
		}
		return false
	case condTime:
		m := f.minuteOfDay()
		if m < 0 {
			return false
		}
		if c.start < c.end {
			return c.start <= m && m < c.end
		}
		return m >= c.start || m < c.end
	case condContext:
		for _, e := range c.ctx {
			if v, ok := f.ctx[e.key]; !ok || v != e.value {
				return false
			}
		}
		return true
	}
	return false // a condition of no known kind never holds
}

// explain says why c does not hold, for Decision.Reason. It never quotes
// the request's context values, which may be sensitive.
func (c *condition) explain(f *facts) string {
	switch c.kind {
	case condSource:
		a := f.address()
		if !a.IsValid() {
			return "the request has no source address, and source_cidrs needs one"
		}
		return fmt.Sprintf("source address %s is not in source_cidrs %s", a, cidrList(c.cidrs))
	case condTime:
		m := f.minuteOfDay()
		if m < 0 {
			return "the request has no time, and time_window needs one"
		}
		return fmt.Sprintf("%02d:%02d UTC is outside time_window %s", m/60, m%60, c.window())
	case condContext:
		for _, e := range c.ctx {
			v, ok := f.ctx[e.key]
			if !ok {
				return fmt.Sprintf("required_context %s is missing from the request", quoteShort(e.key))
			}
			if v != e.value {
				return fmt.Sprintf("required_context %s of the request is not %s", quoteShort(e.key), quoteShort(e.value))
			}
		}
	}
	return "a condition does not hold"
}

func cidrList(ps []netip.Prefix) string {
	const most = 4
	s := make([]string, 0, min(len(ps), most)+1)
	for i, p := range ps {
		if i == most {
			s = append(s, fmt.Sprintf("and %d more", len(ps)-most))
			break
		}
		s = append(s, p.String())
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// parseWindow parses "HH:MM-HH:MM" (UTC; the end may be 24:00) into
// minutes since midnight.
func parseWindow(s string) (start, end int, msg string) {
	const format = `must be "HH:MM-HH:MM" in UTC, as in "08:00-18:00" or "22:00-06:00"`
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, format
	}
	start, ok1 := clock(from)
	end, ok2 := clock(to)
	switch {
	case !ok1 || !ok2:
		return 0, 0, format
	case start == 24*60:
		return 0, 0, "starts at 24:00; write 00:00"
	case start == end:
		return 0, 0, "is empty: it starts where it ends; to allow all day, drop the condition"
	case end == 0:
		end = 24 * 60 // "18:00-00:00" runs to midnight: canonically "18:00-24:00"
	}
	return start, end, ""
}

// clock parses "HH:MM", 00:00 to 24:00, into minutes.
func clock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range [...]int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}
