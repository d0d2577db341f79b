package main

import (
	"fmt"
	"net/url"
	"strings"
)

var pathHelpCmd = &command{
	name:    "path-help",
	args:    "PATH",
	summary: "show what an API path does and who may call it",
	network: true,
	help: `
Print the help of an API path, as the server's route table has it: the
pattern the path matches, and per method what it does and the token it
needs. PATH is as in the API, without /v1/ (transit/encrypt/app). Any
valid token may ask; the paths that need no token answer without one.
The same as 'vault path-help PATH'. The whole API is docs/api.md.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		path := strings.Trim(strings.TrimPrefix(strings.TrimPrefix(pos[0], "/"), "v1/"), "/")
		if path == "" || strings.ContainsAny(path, "?#") {
			return &usageError{msg: fmt.Sprintf("%q is not an API path", pos[0]), hint: "give a path such as transit/encrypt/app"}
		}
		var out struct {
			Help    string   `json:"help"`
			SeeAlso []string `json:"see_also"`
		}
		if err := c.Do(e.ctx, "GET", (&url.URL{Path: path}).EscapedPath()+"?help=1", nil, &out); err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, out)
		}
		fmt.Fprint(e.stdout, out.Help)
		return nil
	},
}
