package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/keyraft/keyraft/transit"
)

// exitFindings is the exit code of 'report hygiene' when it found
// something at or above -fail-on: distinct from a failed command (1) and
// a wrong command line (2), so CI can tell them apart.
const exitFindings = 3

var reportHygieneCmd = &command{
	name:    "report hygiene",
	summary: "check keys (and tokens, policies) for common mistakes",
	network: true,
	help: `
Print the cluster's hygiene findings, most severe first: keys never rotated or
past their rotation period, keys without deletion protection, key versions
close to their encryption limit, compromised keys still usable, and what the
server's other checks add (tokens, policies). Each finding names the object
and the fix.

Exits 3 when there is a finding at or above -fail-on (info, warning,
critical; default warning; none never fails), 1 when the report could not
be made.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		failOn := fs.String("fail-on", transit.SeverityWarning, "exit 3 on a finding of this `severity` or above: info, warning, critical or none")
		if _, err := e.positional(cmd, fs, args, 0, 0); err != nil {
			return err
		}
		threshold := transit.SeverityRank(*failOn)
		if threshold == 0 && *failOn != "none" {
			return &usageError{cmd: cmd, msg: fmt.Sprintf("invalid -fail-on %q", *failOn), hint: "use info, warning, critical or none"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		var env struct {
			Data struct {
				Findings []transit.Finding `json:"findings"`
				Counts   map[string]int    `json:"counts"`
			} `json:"data"`
		}
		if err := c.Do(e.ctx, "GET", "sys/report/hygiene", nil, &env); err != nil {
			return err
		}
		findings := env.Data.Findings
		if g.format == "json" {
			if findings == nil {
				findings = []transit.Finding{}
			}
			if err := printJSON(e.stdout, map[string]any{"findings": findings, "counts": env.Data.Counts}); err != nil {
				return err
			}
		} else {
			printFindings(e, findings)
		}
		if threshold == 0 {
			return nil
		}
		for _, f := range findings {
			if transit.SeverityRank(f.Severity) >= threshold {
				return exitCode(exitFindings)
			}
		}
		return nil
	},
}

func printFindings(e *env, findings []transit.Finding) {
	if len(findings) == 0 {
		fmt.Fprintln(e.stdout, "No findings.")
		return
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprint(tw, "Severity\tObject\tCheck\tFinding\n--------\t------\t-----\t-------\n")
	for _, f := range findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(f.Severity), clean(f.Object), clean(f.Check), clean(f.Message))
		fmt.Fprintf(tw, "\t\t\tfix: %s\n", clean(f.Fix))
	}
	tw.Flush()
	n := map[string]int{}
	for _, f := range findings {
		n[f.Severity]++
	}
	var parts []string
	for _, s := range []string{transit.SeverityCritical, transit.SeverityWarning, transit.SeverityInfo} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
		}
	}
	fmt.Fprintf(e.stdout, "\n%d findings: %s\n", len(findings), strings.Join(parts, ", "))
}
