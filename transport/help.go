package transport

import (
	"fmt"
	"slices"
	"strings"
)

// helpOperation is the audit operation of a path-help request.
const helpOperation = "sys/path-help"

// helpRoute is the row that answers GET path?help=1 (Vault's path help,
// `vault path-help PATH`): the help of the pattern path matches, from the
// table itself, for any valid token, in any namespace the pattern serves.
func helpRoute(path string) (*route, map[string]string, *reply) {
	g, params, miss := apiTable.group(path)
	if miss != nil {
		return nil, nil, miss
	}
	rt := &route{
		pattern: g.pattern, methods: mGet, auth: anyToken, operation: helpOperation,
		handler: func(_ *API, req *request) reply { return reply{raw: g.help()} },
	}
	for _, r := range g.byMethod {
		rt.namespaced = rt.namespaced || r.namespaced
		if r.auth == public {
			rt.auth = public // help of a public path is public too
		}
	}
	return rt, params, nil
}

// help is the answer of a path help request, in Vault's shape: "help" is
// the text the CLI prints.
func (g *routeGroup) help() map[string]any {
	return map[string]any{"help": g.helpText(), "see_also": []string{}}
}

// helpText describes a pattern's rows: per method, what it does and who
// may call it.
func (g *routeGroup) helpText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## PATH\n\n    %s\n\n## OPERATIONS\n", g.pattern)
	methods := make([]string, 0, len(g.byMethod))
	for m := range g.byMethod {
		methods = append(methods, m)
	}
	slices.Sort(methods)
	seen := map[*route]bool{}
	for _, m := range methods {
		r := g.byMethod[m]
		if seen[r] {
			continue
		}
		seen[r] = true
		fmt.Fprintf(&b, "\n    %s\n        %s\n        access: %s", strings.Join(r.methods, ", "), r.summary, r.accessText())
		if r.namespaced {
			b.WriteString("; served in namespaces")
		}
		b.WriteString("\n")
	}
	b.WriteString("\nThe whole API: docs/api.md.\n")
	return b.String()
}

// accessText says who may call a row, for help and docs/api.md.
func (r *route) accessText() string {
	switch r.auth {
	case public:
		return "no token"
	case sudoAuth:
		return "a token with sudo on the path"
	}
	return "a token whose policies allow the method on the path"
}
