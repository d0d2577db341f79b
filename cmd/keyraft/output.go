package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/keyraft/keyraft/api"
)

// row is one line of a Key/Value table.
type row struct{ key, value string }

// printTable prints rows as Vault does:
//
//	Key             Value
//	---             -----
//	Seal Type       shamir
func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 8, 4, ' ', 0)
	fmt.Fprint(tw, "Key\tValue\n---\t-----\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", clean(r.key), clean(r.value))
	}
	tw.Flush()
}

// call does one request and returns the data of the answer (nil when
// it has none) and its warnings, which the client's warning handler has
// printed already.
func (e *env) call(c *api.Client, method, path string, body any) (json.RawMessage, []string, error) {
	var env struct {
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
	}
	if err := c.Do(e.ctx, method, path, body, &env); err != nil {
		return nil, nil, err
	}
	if string(env.Data) == "null" {
		env.Data = nil
	}
	return env.Data, env.Warnings, nil
}

// success reports a change: "Success! …" in table format; in JSON format
// the data of the server's answer, or nothing when it had none.
func (e *env) success(g *globals, data json.RawMessage, format string, args ...any) error {
	if g.format == "json" {
		if len(data) == 0 {
			return nil
		}
		return printJSON(e.stdout, data)
	}
	fmt.Fprintln(e.stdout, clean("Success! "+fmt.Sprintf(format, args...)))
	return nil
}

// printWarnings prints each server warning once, on stderr, whatever the
// format: "warning: key "app" is compromised: …".
func (e *env) printWarnings(warnings []string) {
	for _, w := range warnings {
		w = oneLine(w)
		if w == "" || e.warned[w] {
			continue
		}
		if e.warned == nil {
			e.warned = map[string]bool{}
		}
		e.warned[w] = true
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
}

// printJSON prints v as indented JSON and a newline.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeFileAtomically writes r to path through a temporary file in the
// same directory, readable by its owner only, so the file ends up whole
// or unchanged. check, when not nil,
// runs after the last byte and can still refuse the file.
func writeFileAtomically(path string, r io.Reader, check func() error) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyraft-*")
	if err != nil {
		return 0, &hintError{err: err, hint: "check that the directory exists and is writable"}
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("writing %s: %v", path, err)
	}
	if check != nil {
		if err := check(); err != nil {
			return 0, err
		}
	}
	return n, os.Rename(tmp.Name(), path)
}
