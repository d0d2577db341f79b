package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docCommandLines are the keyraft command lines of the README and
// docs/*.md: code lines (indented or fenced) that run keyraft, with a
// "$ " prompt or without, one per line (a comment after # dropped).
func docCommandLines(t *testing.T) map[string][]string {
	t.Helper()
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fenced := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				fenced = !fenced
				continue
			}
			if !fenced && !strings.HasPrefix(line, "    ") {
				continue
			}
			l := strings.TrimSpace(line)
			if _, rest, ok := strings.Cut(l, "$ "); ok && strings.HasPrefix(rest, "keyraft ") {
				l = rest // "(on-call)  $ keyraft …" too
			}
			if !strings.HasPrefix(l, "keyraft ") {
				continue
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], l)
		}
	}
	return out
}

// shellWords splits a documented command line as a shell would for the
// simple forms the docs use: quotes, a trailing comment, and stops at a
// pipe or redirection (what follows is another program's).
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case !inWord && (c == '#' || c == '|' || c == '>' || c == '<' || c == '&' || c == ';'):
			return words
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

var docFlag = regexp.MustCompile(`^--?([a-zA-Z0-9][a-zA-Z0-9_-]*)`)

// Every keyraft command line in the README and docs names a command that
// exists and only flags that command has, so the docs cannot drift from
// the CLI (a line that runs is tested where its feature is).
func TestDocCommandLines(t *testing.T) {
	lines := docCommandLines(t)
	n := 0
	for file, ls := range lines {
		for _, line := range ls {
			n++
			args := shellWords(line)[1:]
			cmd, rest, err := lookup(args)
			if err != nil {
				t.Errorf("%s: %q: %v", file, line, err)
				continue
			}
			var manual bytes.Buffer
			e := &env{ctx: context.Background(), stdout: &manual, stderr: &manual, getenv: func(string) string { return "" }}
			if cmd.run != nil && !cmd.noFlags {
				// The command's own flags are defined as it runs: ask it
				// for its manual, as -h does.
				cmd.run(e, cmd, []string{"-h"})
			}
			help := manual.String()
			for i := 0; i < len(rest); i++ {
				a := rest[i]
				m := docFlag.FindStringSubmatch(a)
				if a == "--" || m == nil {
					break // flags end at the first argument, as Go's flag package reads them
				}
				def := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(m[1]) + `( (.+))?$`).FindStringSubmatch(help)
				if def == nil {
					t.Errorf("%s: %q: keyraft %s has no flag -%s", file, line, cmd.name, m[1])
					continue
				}
				if def[2] != "" && !strings.Contains(a, "=") {
					i++ // -flag VALUE
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("found %d keyraft command lines in the README and docs; the extractor is broken", n)
	}
}
