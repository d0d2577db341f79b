package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// tokenAuth is the "auth" block of a token create or renew answer.
type tokenAuth struct {
	ClientToken   string            `json:"client_token"`
	Accessor      string            `json:"accessor"`
	Policies      []string          `json:"policies"`
	TokenPolicies []string          `json:"token_policies"`
	Metadata      map[string]string `json:"metadata"`
	LeaseDuration int64             `json:"lease_duration"`
	Renewable     bool              `json:"renewable"`
	Orphan        bool              `json:"orphan"`
	NumUses       int               `json:"num_uses"`
}

// printAuth prints the "auth" object of a token answer: the answer's
// data, for token create and renew.
func printAuth(e *env, format string, a tokenAuth) error {
	if format == "json" {
		return printJSON(e.stdout, a)
	}
	rows := []row{
		{"token", a.ClientToken},
		{"token_accessor", a.Accessor},
		{"token_duration", durationText(a.LeaseDuration)},
		{"token_renewable", fmt.Sprint(a.Renewable)},
		{"token_policies", "[" + strings.Join(a.TokenPolicies, " ") + "]"},
		{"policies", "[" + strings.Join(a.Policies, " ") + "]"},
	}
	if a.ClientToken == "" {
		rows = rows[1:]
	}
	if a.NumUses > 0 {
		rows = append(rows, row{"token_num_uses", fmt.Sprint(a.NumUses)})
	}
	keys := make([]string, 0, len(a.Metadata))
	for k := range a.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rows = append(rows, row{"token_meta_" + k, a.Metadata[k]})
	}
	printTable(e.stdout, rows)
	return nil
}

func durationText(seconds int64) string {
	if seconds == 0 {
		return "∞"
	}
	return (time.Duration(seconds) * time.Second).String()
}

var tokenCreateCmd = &command{
	name:    "token create",
	summary: "create a token",
	network: true,
	help: `
Create a token (Vault's 'token create'). Without -policy the token gets the
policies of the token that creates it; a token without sudo on
auth/token/create may only hand out policies it holds. The new token is a
child of the current one, revoked with it, unless -orphan. Every token
but a root token expires: -ttl (default 768h), renewable up to
-explicit-max-ttl. -use-limit ends it after that many requests;
-bound-cidr restricts where it may be used from.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		var policies, cidrs, meta listFlag
		fs.Var(&policies, "policy", "`name` of a policy for the token; repeat or separate with commas")
		fs.Var(&cidrs, "bound-cidr", "`CIDR` the token may be used from; repeat for several")
		fs.Var(&meta, "metadata", "`key=value` to attach; repeat for several")
		ttl := fs.Duration("ttl", 0, "initial lifetime, e.g. 1h (default 768h)")
		maxTTL := fs.Duration("explicit-max-ttl", 0, "lifetime that renewals never go past")
		uses := fs.Int("use-limit", 0, "number of requests the token may make (0: unlimited)")
		orphan := fs.Bool("orphan", false, "make a token without a parent (needs sudo)")
		name := fs.String("display-name", "", "name shown in lookups and the audit log")
		renewable := fs.Bool("renewable", true, "allow renewing the token")
		noDefault := fs.Bool("no-default-policy", false, "do not attach the default policy")
		field := fs.String("field", "", "print only this field of the answer (token, token_accessor)")
		if _, err := e.positional(cmd, fs, args, 0, 0); err != nil {
			return err
		}
		if *ttl < 0 || *maxTTL < 0 || *uses < 0 {
			return &usageError{cmd: cmd, msg: "-ttl, -explicit-max-ttl and -use-limit must not be negative"}
		}
		body := map[string]any{"display_name": *name, "num_uses": *uses, "renewable": *renewable,
			"no_default_policy": *noDefault}
		if len(policies) > 0 {
			body["policies"] = []string(policies)
		}
		if len(cidrs) > 0 {
			body["bound_cidrs"] = []string(cidrs)
		}
		if *ttl > 0 {
			body["ttl"] = ttl.String()
		}
		if *maxTTL > 0 {
			body["explicit_max_ttl"] = maxTTL.String()
		}
		if len(meta) > 0 {
			m := map[string]string{}
			for _, kv := range meta {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return &usageError{cmd: cmd, msg: fmt.Sprintf("-metadata %q: use key=value", kv)}
				}
				m[k] = v
			}
			body["meta"] = m
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		path := "auth/token/create"
		if *orphan {
			path = "auth/token/create-orphan"
		}
		var out struct {
			Auth tokenAuth `json:"auth"`
		}
		if err := c.Do(e.ctx, "POST", path, body, &out); err != nil {
			return &hintError{err: err, hint: "creating a token needs update on " + path + "; policies must be ones the current token holds"}
		}
		switch *field {
		case "":
			return printAuth(e, g.format, out.Auth)
		case "token":
			fmt.Fprintln(e.stdout, out.Auth.ClientToken)
		case "token_accessor", "accessor":
			fmt.Fprintln(e.stdout, out.Auth.Accessor)
		default:
			return &usageError{cmd: cmd, msg: fmt.Sprintf("unknown -field %q: use token or token_accessor", *field)}
		}
		return nil
	},
}

var tokenLookupCmd = &command{
	name:    "token lookup",
	args:    "[TOKEN]",
	summary: "show a token's properties",
	network: true,
	help: `
Show the properties of TOKEN, of the token with -accessor, or without
either of the current token (lookup-self).`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		byAccessor := fs.Bool("accessor", false, "the argument is an accessor, not a token")
		pos, c, err := e.connect(cmd, fs, g, args, 0, 1)
		if err != nil {
			return err
		}
		var out struct {
			Data map[string]any `json:"data"`
		}
		switch {
		case len(pos) == 0 && *byAccessor:
			return &usageError{cmd: cmd, msg: "missing ACCESSOR"}
		case len(pos) == 0:
			err = c.Do(e.ctx, "GET", "auth/token/lookup-self", nil, &out)
		case *byAccessor:
			err = c.Do(e.ctx, "POST", "auth/token/lookup-accessor", map[string]string{"accessor": pos[0]}, &out)
		default:
			err = c.Do(e.ctx, "POST", "auth/token/lookup", map[string]string{"token": pos[0]}, &out)
		}
		if err != nil {
			return err
		}
		return printData(e, g.format, out.Data)
	},
}

// printData prints a data object as a key/value table (sorted), or JSON.
func printData(e *env, format string, data map[string]any) error {
	if format == "json" {
		return printJSON(e.stdout, data)
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rows := make([]row, 0, len(keys))
	for _, k := range keys {
		v := data[k]
		s := "n/a"
		switch t := v.(type) {
		case nil:
		case []any:
			parts := make([]string, len(t))
			for i, p := range t {
				parts[i] = fmt.Sprint(p)
			}
			s = "[" + strings.Join(parts, " ") + "]"
		case float64:
			s = fmt.Sprint(int64(t))
		default:
			s = fmt.Sprint(t)
		}
		rows = append(rows, row{k, s})
	}
	printTable(e.stdout, rows)
	return nil
}

var tokenRenewCmd = &command{
	name:    "token renew",
	args:    "[TOKEN]",
	summary: "extend a token's life",
	network: true,
	help: `
Renew TOKEN (or the token with -accessor, or the current token) for
-increment, or for its original TTL; never past its explicit max TTL.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		byAccessor := fs.Bool("accessor", false, "the argument is an accessor, not a token")
		inc := fs.Duration("increment", 0, "new lifetime from now, e.g. 1h (default: the token's TTL)")
		pos, err := e.positional(cmd, fs, args, 0, 1)
		if err != nil {
			return err
		}
		if *inc < 0 {
			return &usageError{cmd: cmd, msg: "-increment must not be negative"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		body := map[string]any{}
		if *inc > 0 {
			body["increment"] = inc.String()
		}
		path := "auth/token/renew-self"
		switch {
		case len(pos) == 0 && *byAccessor:
			return &usageError{cmd: cmd, msg: "missing ACCESSOR"}
		case len(pos) == 0:
		case *byAccessor:
			path, body["accessor"] = "auth/token/renew-accessor", pos[0]
		default:
			path, body["token"] = "auth/token/renew", pos[0]
		}
		var out struct {
			Auth tokenAuth `json:"auth"`
		}
		if err := c.Do(e.ctx, "POST", path, body, &out); err != nil {
			return err
		}
		return printAuth(e, g.format, out.Auth)
	},
}

var tokenRevokeCmd = &command{
	name:    "token revoke",
	args:    "[TOKEN]",
	summary: "revoke a token and its children",
	network: true,
	help: `
Revoke TOKEN (or the token with -accessor, or the current one with -self)
and every token created under it. -mode=orphan revokes only the token and
makes its children orphans (needs sudo).`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		byAccessor := fs.Bool("accessor", false, "the argument is an accessor, not a token")
		self := fs.Bool("self", false, "revoke the current token")
		mode := fs.String("mode", "", "orphan: keep the children, as orphans")
		pos, err := e.positional(cmd, fs, args, 0, 1)
		if err != nil {
			return err
		}
		if *mode != "" && *mode != "orphan" {
			return &usageError{cmd: cmd, msg: fmt.Sprintf("unknown -mode %q: use orphan", *mode)}
		}
		if (len(pos) == 0) != *self {
			return &usageError{cmd: cmd, msg: "give a TOKEN (or ACCESSOR with -accessor), or -self"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		var path string
		var body map[string]string
		switch {
		case *self:
			path = "auth/token/revoke-self"
		case *byAccessor:
			path, body = "auth/token/revoke-accessor", map[string]string{"accessor": pos[0]}
		case *mode == "orphan":
			path, body = "auth/token/revoke-orphan", map[string]string{"token": pos[0]}
		default:
			path, body = "auth/token/revoke", map[string]string{"token": pos[0]}
		}
		if err := c.Do(e.ctx, "POST", path, body, nil); err != nil {
			return err
		}
		return e.success(g, nil, "Revoked token (if it existed)")
	},
}
