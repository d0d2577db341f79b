package main

import (
	"encoding/json"
	"fmt"
	"io"
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
