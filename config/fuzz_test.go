package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that every error is
// one line wrapping a sentinel, and that a parsed config is valid and
// stable under Validate.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"good", "bad"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.hcl"))
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Add([]byte("listener \"tcp\" { tls_disable = 1e999999 }"))
	f.Add([]byte("storage \"raft\" { path = \"${x}\" }"))
	f.Add([]byte("a = " + strings.Repeat("[", 200)))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src, "keyraft.hcl")
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error has several lines: %q", err)
			}
			if !strings.HasPrefix(err.Error(), "keyraft.hcl") {
				t.Fatalf("error does not name the file: %q", err)
			}
			return
		}
		again := *c
		again.Listeners = append([]Listener(nil), c.Listeners...)
		if err := again.Validate(); err != nil {
			t.Fatalf("Validate after Parse: %v", err)
		}
		if !reflect.DeepEqual(again, *c) {
			t.Fatalf("Validate changed a parsed config")
		}
	})
}
