package transport

import (
	"fmt"
	"net/http"
	"strings"
)

// authLevel is who may call a route.
type authLevel int

const (
	// public routes take no token: status, init and unseal, the
	// ceremonies whose shares are the authority, the join proofs, login.
	public authLevel = iota
	// tokenAuth routes need a valid token whose policies allow the method
	// on the path (and the namespace, expiry, bound_cidrs and num_uses
	// checks that come with every token).
	tokenAuth
	// sudoAuth routes are Vault's root-protected paths: the token needs
	// sudo on the path besides the capability of the method.
	sudoAuth
	// anyToken is a valid token, whatever its policies allow: path help,
	// which Vault allows every token (it tells what a path is, not what
	// it holds).
	anyToken
)

func (a authLevel) String() string {
	return [...]string{"none", "token", "sudo", "any token"}[a]
}

// route is one row of the API table: a path pattern and the methods it
// serves, and everything the pipeline (API.serve) does around its
// handler. Rows are the only place where the shape of a path is known.
type route struct {
	// pattern is the path after /v1/, by segments: a literal, ":name" (one
	// segment, a parameter), ":name?" (optional; only the last segments)
	// or "*name" (the rest of the path, one or more segments).
	pattern string
	methods []string // GET, POST (and PUT), DELETE, LIST
	auth    authLevel
	// namespaced routes serve inside a namespace (X-Vault-Namespace);
	// every other route exists only in the root namespace.
	namespaced bool
	// key is the parameter that names a transit key: mapped into the
	// request's namespace before the handler sees it, and the event's key.
	key string
	// lease routes are the transit engine's, served from the local state:
	// only while the node is in touch with the leader (Node.CheckLease),
	// within the token's budget of batch items in flight.
	lease bool
	// createIfMissing is Vault's existence check: a POST to a key that
	// does not exist yet needs "create", not "update" (encrypt creates).
	createIfMissing bool
	// unsealed public routes answer 503 while the node is sealed (routes
	// with a token always do).
	unsealed bool
	// committed is the status the handler answers once its change
	// commits. The change's audit event commits in the same Raft entry
	// as the change, before the handler can answer: the event says what
	// a committed change answers, and an answer that differs afterwards
	// gets a follow-up event (ServeHTTP). 0 means 200.
	committed int
	// rawBody routes read the body themselves (a snapshot upload); the
	// pipeline does not buffer it.
	rawBody bool
	// sensitive are body fields recorded in the event as HMACs only,
	// besides the fields every transit request treats so (values the
	// engine treats as secret: plaintext, ciphertext, …).
	sensitive []string
	// operation is the audit operation and the metrics label; "" means
	// the pattern's first two segments.
	operation string
	// summary says what the row does, for docs/api.md.
	summary string
	handler func(a *API, req *request) reply
}

// segment is one compiled segment of a pattern.
type segment struct {
	lit      string
	param    string
	optional bool
	rest     bool
}

// table is the compiled API: rows grouped by pattern.
type table struct {
	groups  []*routeGroup
	byFirst map[string][]*routeGroup // by the pattern's first segment
	rows    []*route                 // in the order given
}

// routeGroup is the rows of one pattern, by method.
type routeGroup struct {
	pattern  string
	segs     []segment
	byMethod map[string]*route
}

func compilePattern(p string) []segment {
	var segs []segment
	for _, s := range strings.Split(p, "/") {
		switch {
		case strings.HasPrefix(s, "*"):
			segs = append(segs, segment{param: s[1:], rest: true})
		case strings.HasPrefix(s, ":") && strings.HasSuffix(s, "?"):
			segs = append(segs, segment{param: s[1 : len(s)-1], optional: true})
		case strings.HasPrefix(s, ":"):
			segs = append(segs, segment{param: s[1:]})
		default:
			segs = append(segs, segment{lit: s})
		}
	}
	return segs
}

// newTable compiles rows; a malformed table (two rows for one pattern and
// method, an optional segment that is not last) is a programming error.
func newTable(rows []route) *table {
	t := &table{byFirst: map[string][]*routeGroup{}}
	idx := map[string]*routeGroup{}
	for i := range rows {
		r := &rows[i]
		if r.operation == "" {
			r.operation = defaultOperation(r.pattern)
		}
		t.rows = append(t.rows, r)
		g := idx[r.pattern]
		if g == nil {
			g = &routeGroup{pattern: r.pattern, segs: compilePattern(r.pattern), byMethod: map[string]*route{}}
			for j, s := range g.segs {
				last := j == len(g.segs)-1
				if s.rest && !last || s.optional && !last && !g.segs[j+1].optional {
					panic("transport: route " + r.pattern + ": only the last segments may be optional, only the last the rest")
				}
			}
			if g.segs[0].lit == "" || len(g.segs) > maxPathSegments {
				panic("transport: route " + r.pattern + ": a pattern starts with a literal and has at most maxPathSegments segments")
			}
			idx[r.pattern] = g
			t.groups = append(t.groups, g)
			t.byFirst[g.segs[0].lit] = append(t.byFirst[g.segs[0].lit], g)
		}
		for _, m := range r.methods {
			if g.byMethod[m] != nil {
				panic("transport: route " + r.pattern + " has two rows for " + m)
			}
			g.byMethod[m] = r
		}
	}
	return t
}

// defaultOperation is the audit operation of a pattern: its first two
// segments ("transit/encrypt").
func defaultOperation(pattern string) string {
	p := strings.Split(pattern, "/")
	if len(p) < 2 || strings.ContainsAny(p[1], ":*") {
		return p[0]
	}
	return p[0] + "/" + p[1]
}

// maxPathSegments bounds the paths the table matches: no row has more,
// and the match score must fit its integer.
const maxPathSegments = 24

// match reports whether the group's pattern matches parts, and how
// specific the match is: per path segment a literal (3) outranks a
// parameter (2), which outranks the rest (1); then a pattern that needs
// no optional segment (1) outranks one that left some out (0). Every
// match of one path has len(parts)+1 digits, so scores compare as
// integers. It allocates nothing (the table is on the hot path).
func (g *routeGroup) match(parts []string) (uint64, bool) {
	var score uint64
	digit := func(d uint64) { score = score<<2 | d }
	for i, s := range g.segs {
		switch {
		case s.rest:
			if i >= len(parts) {
				return 0, false
			}
			for range parts[i:] {
				digit(1)
			}
			digit(1)
			return score, true
		case i >= len(parts):
			for _, rest := range g.segs[i:] {
				if !rest.optional {
					return 0, false
				}
			}
			digit(0)
			return score, true
		case s.lit != "":
			if parts[i] != s.lit {
				return 0, false
			}
			digit(3)
		default:
			if parts[i] == "" {
				return 0, false
			}
			digit(2)
		}
	}
	if len(parts) != len(g.segs) {
		return 0, false
	}
	digit(1)
	return score, true
}

// params are the parameters of a path the group matches.
func (g *routeGroup) params(parts []string) map[string]string {
	var params map[string]string
	for i, s := range g.segs {
		if s.lit != "" || i >= len(parts) {
			continue
		}
		if params == nil {
			params = make(map[string]string, len(g.segs))
		}
		if s.rest {
			params[s.param] = strings.Join(parts[i:], "/")
			break
		}
		params[s.param] = parts[i]
	}
	return params
}

// lookup finds the row of path and method: the most specific pattern
// that matches the path, then its row for the method. A path no pattern
// matches is a 404 (naming the patterns of its family, when it has few);
// a method the pattern does not serve is a 405.
func (t *table) lookup(path, method string) (*route, map[string]string, *reply) {
	g, params, miss := t.group(path)
	if miss != nil {
		return nil, nil, miss
	}
	rt := g.byMethod[method]
	if rt == nil {
		r := unsupportedOp()
		return nil, nil, &r
	}
	return rt, params, nil
}

// group finds the most specific pattern that matches path, whatever the
// method, and the path's parameters.
func (t *table) group(path string) (*routeGroup, map[string]string, *reply) {
	parts := strings.Split(path, "/")
	var best *routeGroup
	var bestScore uint64
	if len(parts) <= maxPathSegments {
		for _, g := range t.byFirst[parts[0]] {
			if score, ok := g.match(parts); ok && (best == nil || score > bestScore) {
				best, bestScore = g, score
			}
		}
	}
	if best == nil {
		r := errReply(http.StatusNotFound, t.notFound(parts))
		return nil, nil, &r
	}
	return best, best.params(parts), nil
}

// notFound is the message of a 404: the patterns that start like the
// path, so a caller sees the shape it got wrong.
func (t *table) notFound(parts []string) string {
	if len(parts) < 2 {
		return "unsupported path"
	}
	var like []string
	for _, g := range t.groups {
		if len(g.segs) >= 2 && g.segs[0].lit == parts[0] && g.segs[1].lit == parts[1] {
			like = append(like, g.pattern)
		}
	}
	if len(like) == 0 || len(like) > 3 { // a long list helps nobody
		return "unsupported path"
	}
	return "unsupported path: use " + strings.Join(like, ", ")
}

// operations is the closed set of audit operation names of the table,
// so that a caller (one without a token included) can neither grow the
// metrics' label set nor put text of its own into an event's operation.
func (t *table) operations() map[string]bool {
	ops := map[string]bool{helpOperation: true}
	for _, g := range t.groups {
		for _, r := range g.byMethod {
			ops[r.operation] = true
		}
	}
	return ops
}

func (r *route) String() string {
	return fmt.Sprintf("%s %s", strings.Join(r.methods, ","), r.pattern)
}
