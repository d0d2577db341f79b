package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/keyraft/keyraft/acl"
)

// listFlag is a flag that may be given several times (-policy a -policy b)
// or once with commas (-policy a,b).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

var policyWriteCmd = &command{
	name:    "policy write",
	args:    "NAME FILE",
	summary: "create or replace an ACL policy",
	network: true,
	help: `
Store the ACL policy NAME from FILE ('-' reads stdin), Vault's HCL policy
language with keyraft's conditions (source_cidrs, time_window,
required_context). The server checks the policy before storing it and
names the line and column of a mistake. Needs update on
sys/policies/acl/NAME.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, err := e.positional(cmd, fs, args, 2, 2)
		if err != nil {
			return err
		}
		src, err := e.readInput(pos[1], acl.MaxPolicySize)
		if err != nil {
			return &hintError{err: err, hint: "give the policy file, or - to read it from stdin"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		if err := c.Do(e.ctx, "PUT", "sys/policies/acl/"+url.PathEscape(pos[0]), map[string]string{"policy": string(src)}, nil); err != nil {
			return &hintError{err: err, hint: "fix the policy at the line and column named, then write it again"}
		}
		return e.success(g, nil, "Uploaded policy: %s", pos[0])
	},
}

var policyReadCmd = &command{
	name:    "policy read",
	args:    "NAME",
	summary: "show an ACL policy",
	network: true,
	help:    "Print the source of the ACL policy NAME as it was written.",
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				Name   string `json:"name"`
				Policy string `json:"policy"`
			} `json:"data"`
		}
		if err := c.Do(e.ctx, "GET", "sys/policies/acl/"+url.PathEscape(pos[0]), nil, &out); err != nil {
			return &hintError{err: err, hint: "'keyraft policy list' shows the policies"}
		}
		if g.format == "json" {
			return printJSON(e.stdout, out.Data)
		}
		fmt.Fprint(e.stdout, out.Data.Policy)
		if !strings.HasSuffix(out.Data.Policy, "\n") {
			fmt.Fprintln(e.stdout)
		}
		return nil
	},
}

var policyListCmd = &command{
	name:    "policy list",
	summary: "list the ACL policies",
	network: true,
	help:    "List the names of the ACL policies, built-in ones (default, root) included.",
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				Keys []string `json:"keys"`
			} `json:"data"`
		}
		if err := c.Do(e.ctx, "LIST", "sys/policies/acl", nil, &out); err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, map[string][]string{"keys": out.Data.Keys})
		}
		for _, k := range out.Data.Keys {
			fmt.Fprintln(e.stdout, clean(k))
		}
		return nil
	},
}

var policyDeleteCmd = &command{
	name:    "policy delete",
	args:    "NAME",
	summary: "delete an ACL policy",
	network: true,
	help: `
Delete the ACL policy NAME. Tokens that name it keep existing but are no
longer granted anything by it. The built-in policies cannot be deleted.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		if err := c.Do(e.ctx, "DELETE", "sys/policies/acl/"+url.PathEscape(pos[0]), nil, nil); err != nil {
			return err
		}
		return e.success(g, nil, "Deleted policy: %s", pos[0])
	},
}
