package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for the keyraft binary when a
// server started by a test runs its built-in plugins: the node starts its
// own executable (here, this test binary) with "plugin serve-builtin".
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "plugin" && os.Args[2] == "serve-builtin" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}
