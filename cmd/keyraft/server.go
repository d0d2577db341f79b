package main

import (
	"context"
	"fmt"
	"io"
)

// runServer is a stub, to be replaced by the real server command.
func runServer(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fmt.Fprintln(stderr, "error: server not built yet")
	return 1
}
