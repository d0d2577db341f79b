package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// grantInfo is a grant as the API answers it.
type grantInfo struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Operation   string `json:"operation"`
	TTL         int64  `json:"ttl"`
	Reason      string `json:"reason"`
	State       string `json:"state"`
	Requester   string `json:"requester"`
	RequestedBy string `json:"requested_by"`
	Approver    string `json:"approver,omitempty"`
	ApprovedBy  string `json:"approved_by,omitempty"`
	ExpiresAt   string `json:"expires_at"`
}

func printGrant(e *env, format string, g grantInfo) error {
	if format == "json" {
		return printJSON(e.stdout, g)
	}
	rows := []row{{"id", g.ID}, {"key", g.Key}, {"operation", g.Operation}, {"ttl", durationText(g.TTL)},
		{"state", g.State}, {"reason", g.Reason}, {"requester", g.Requester}, {"expires_at", g.ExpiresAt}}
	if g.Approver != "" {
		rows = append(rows, row{"approver", g.Approver})
	}
	printTable(e.stdout, rows)
	return nil
}

var grantRequestCmd = &command{
	name:    "grant request",
	summary: "ask for temporary use of a key (just-in-time grant)",
	network: true,
	help: `
Request a just-in-time grant: the current token may use -operation on the
transit key -key for -ttl once another identity approves it ('keyraft
grant approve ID'). The approver may not be the requester or a token made
under it. The request, the approval, every use and the expiry are
recorded in the audit log.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		key := fs.String("key", "", "transit key `name`")
		op := fs.String("operation", "", "encrypt, decrypt, rewrap, datakey, sign, verify or hmac")
		ttl := fs.Duration("ttl", time.Hour, "how long the grant lasts once approved (1m to 24h)")
		reason := fs.String("reason", "", "why (recorded; required)")
		if _, err := e.positional(cmd, fs, args, 0, 0); err != nil {
			return err
		}
		if *key == "" || *op == "" || *reason == "" {
			return &usageError{cmd: cmd, msg: "-key, -operation and -reason are required"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		var out struct {
			Data grantInfo `json:"data"`
		}
		if err := c.Do(e.ctx, "POST", "sys/grants", map[string]any{"key": *key, "operation": *op, "ttl": ttl.String(), "reason": *reason}, &out); err != nil {
			return &hintError{err: err, hint: "requesting needs update on sys/grants"}
		}
		if g.format == "table" {
			fmt.Fprintf(e.stderr, "Grant %s is pending; ask another operator to run: keyraft grant approve %s\n", out.Data.ID, out.Data.ID)
		}
		return printGrant(e, g.format, out.Data)
	},
}

var grantApproveCmd = &command{
	name:    "grant approve",
	args:    "ID",
	summary: "approve another identity's grant request",
	network: true,
	help: `
Approve the pending grant ID; it becomes active for its TTL from now.
Needs update on sys/grants/approve, and a token that is neither the
requester's nor made under it (two-person rule).`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		var out struct {
			Data grantInfo `json:"data"`
		}
		if err := c.Do(e.ctx, "POST", "sys/grants/approve", map[string]string{"id": pos[0]}, &out); err != nil {
			hint := "'keyraft grant list' shows the grants and their state"
			switch msg := err.Error(); {
			case strings.Contains(msg, "another identity must approve it"):
				hint = "ask another operator to approve it, with a token of their own: not made from the requester's token, nor from a login with the same certificate"
			case strings.Contains(msg, "the requester's token cannot be found"):
				hint = "the requester asks again with 'keyraft grant request', and another operator approves the new grant"
			}
			return &hintError{err: err, hint: hint}
		}
		return printGrant(e, g.format, out.Data)
	},
}

var grantListCmd = &command{
	name:    "grant list",
	summary: "list the grants, pending and active",
	network: true,
	help:    "List the just-in-time grants with their state (pending, active, expired).",
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				Grants []grantInfo `json:"grants"`
			} `json:"data"`
		}
		if err := c.Do(e.ctx, "GET", "sys/grants", nil, &out); err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, out.Data)
		}
		if len(out.Data.Grants) == 0 {
			fmt.Fprintln(e.stderr, "No grants.")
			return nil
		}
		fmt.Fprintf(e.stdout, "%-24s  %-8s  %-10s  %-20s  %s\n", "ID", "STATE", "OPERATION", "KEY", "EXPIRES")
		for _, gr := range out.Data.Grants {
			fmt.Fprintf(e.stdout, "%-24s  %-8s  %-10s  %-20s  %s\n", clean(gr.ID), clean(gr.State), clean(gr.Operation), clean(gr.Key), clean(gr.ExpiresAt))
		}
		return nil
	},
}

var grantRevokeCmd = &command{
	name:    "grant revoke",
	args:    "ID",
	summary: "end a grant now",
	network: true,
	help:    "End the grant ID (pending or active) at once.",
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		if err := c.Do(e.ctx, "DELETE", "sys/grants/"+url.PathEscape(pos[0]), nil, nil); err != nil {
			return err
		}
		return e.success(g, nil, "Revoked grant %s", pos[0])
	},
}
