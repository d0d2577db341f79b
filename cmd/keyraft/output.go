package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
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
