package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/keyraft/keyraft/acl"
)

// A doc snippet is HCL that README.md or a docs/*.md file shows: an
// indented code block or a fenced block without a language or with hcl,
// cut into paragraphs at blank lines (commands follow some configs), the
// file a transcript prints with `$ cat FILE.hcl`, or an inline code span
// that is a whole block (`storage "raft" { plugin = "bolt" }`).
type docSnippet struct {
	where  string // README.md:123
	src    string
	inline bool
}

// hclLine matches a line that can only be HCL: a block opener at the
// start of the line (`storage "raft" {`, `retry_join {`) or an argument
// (`api_addr = "…"`). Shell lines (commands, `export A=b`, curl) never
// match, so a paragraph with such a line is HCL and must parse.
var hclLine = regexp.MustCompile(`^[a-z_]+(\s+"[^"]*")*\s*\{|^[a-z_]+\s+=\s`)

// catHCL matches a transcript line that prints an HCL file.
var catHCL = regexp.MustCompile(`^\$ cat \S+\.hcl\s*$`)

// inlineBlock matches an inline code span that holds a whole block.
var inlineBlock = regexp.MustCompile("`([a-z_]+(?: \"[^\"`]*\")* \\{[^`]*\\})`")

// docSnippets returns the HCL snippets of a Markdown file.
func docSnippets(t *testing.T, path string) []docSnippet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(path)
	if filepath.Base(filepath.Dir(path)) == "docs" {
		name = "docs/" + name
	}
	lines := strings.Split(string(b), "\n")
	var out []docSnippet
	// paragraphs cuts a code block (its lines, the first at line first)
	// into paragraphs and keeps those with an HCL line; a `$ cat F.hcl`
	// line starts a file that runs to the next `$ ` line.
	paragraphs := func(block []string, first int, mustBeHCL bool) {
		var cur []string
		start, isHCL := 0, false
		flush := func() {
			if len(cur) > 0 && (isHCL || mustBeHCL) {
				out = append(out, docSnippet{where: name + ":" + strconv.Itoa(start), src: strings.Join(cur, "\n") + "\n"})
			}
			cur, isHCL = nil, false
		}
		inCat := false
		for i, l := range block {
			switch {
			case strings.HasPrefix(l, "$ "):
				flush()
				inCat = catHCL.MatchString(l)
				continue
			case strings.TrimSpace(l) == "" && !inCat:
				flush()
				continue
			}
			if cur == nil {
				start = first + i
			}
			cur = append(cur, l)
			isHCL = isHCL || inCat || hclLine.MatchString(l)
		}
		flush()
	}
	fenced, lang, fenceAt := false, "", 0
	var block []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "```") {
			if !fenced {
				fenced, lang, fenceAt, block = true, strings.TrimPrefix(trimmed, "```"), i+2, nil
				continue
			}
			fenced = false
			if lang == "" || lang == "hcl" {
				paragraphs(block, fenceAt, lang == "hcl")
			}
			continue
		}
		if fenced {
			block = append(block, l)
			continue
		}
		if code, ok := strings.CutPrefix(l, "    "); ok && (i == 0 || strings.TrimSpace(lines[i-1]) == "") {
			// An indented code block: indented lines and blank lines
			// up to a line that is neither.
			first := i + 1
			block = []string{code}
			for i+1 < len(lines) && (strings.HasPrefix(lines[i+1], "    ") || strings.TrimSpace(lines[i+1]) == "") {
				i++
				block = append(block, strings.TrimPrefix(lines[i], "    "))
			}
			paragraphs(block, first, false)
			continue
		}
		for _, m := range inlineBlock.FindAllStringSubmatch(l, -1) {
			out = append(out, docSnippet{where: name + ":" + strconv.Itoa(i+1), src: m[1] + "\n", inline: true})
		}
	}
	if fenced {
		t.Errorf("%s: a code fence opened on line %d is never closed", name, fenceAt-1)
	}
	return out
}

const (
	minimalStorage  = "storage \"raft\" {\n  path    = \"/data\"\n  node_id = \"n\"\n}\n"
	minimalListener = "listener \"tcp\" {\n  address     = \"127.0.0.1:8200\"\n  tls_disable = true\n}\n"
)

// parseSnippet parses a snippet with the loader it is written for: a
// policy (path blocks) with acl.Parse, anything else as a server config
// with Parse, completed with a minimal storage block and listener when it
// has none, and put inside storage "raft" when it is one of that block's
// own blocks (retry_join, autopilot).
func parseSnippet(s docSnippet) (*Config, error) {
	f, diags := hclsyntax.ParseConfig([]byte(s.src), s.where, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	var top []string
	src := s.src
	if s.inline {
		// One line that parses as it is: spread it over lines, so that
		// the required arguments below can go in.
		i, j := strings.Index(src, "{"), strings.LastIndex(src, "}")
		src = src[:i+1] + "\n" + src[i+1:j] + "\n" + src[j:]
	}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		top = append(top, b.Type)
		if b.Type == "storage" && s.inline {
			// An inline storage block shows one setting: give it the
			// required ones it leaves out.
			for _, req := range []string{`path = "/data"`, `node_id = "n"`} {
				if _, ok := b.Body.Attributes[strings.Fields(req)[0]]; !ok {
					src = strings.Replace(src, "{", "{\n  "+req+"\n", 1)
				}
			}
		}
	}
	has := func(typ string) bool { return strings.Contains(" "+strings.Join(top, " ")+" ", " "+typ+" ") }
	if has("path") {
		_, err := acl.Parse("doc", []byte(s.src))
		return nil, err
	}
	switch {
	case has("retry_join") || has("autopilot"):
		src = "storage \"raft\" {\n  path    = \"/data\"\n  node_id = \"n\"\n" + src + "}\n"
	case !has("storage"):
		src = minimalStorage + src
	}
	if !has("listener") {
		src += minimalListener
	}
	return Parse([]byte(src), s.where)
}

// TestDocSnippets parses every HCL snippet of the README and of docs/*.md
// with the loader that takes it (the server config's Parse, which also
// validates, or acl.Parse for policies), so that no documented config or
// policy is one keyraft refuses. The listener snippet that says it shows
// the defaults must parse to them.
func TestDocSnippets(t *testing.T) {
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	perFile := map[string]int{}
	kinds := map[string]int{}
	limits := false
	for _, doc := range append([]string{"../README.md"}, docs...) {
		for _, s := range docSnippets(t, doc) {
			perFile[filepath.Base(doc)]++
			c, err := parseSnippet(s)
			if err != nil {
				t.Errorf("%s: the snippet does not parse: %v\n%s", s.where, err, s.src)
				continue
			}
			for _, k := range []string{`storage "raft"`, `listener "tcp"`, "retry_join", `audit "`, `seal "pkcs11"`, `path "`} {
				if strings.Contains(s.src, k) {
					kinds[k]++
				}
			}
			if strings.Contains(s.src, "http_read_timeout") {
				limits = true
				if l := c.Listeners[0]; l.HTTPReadTimeout != DefaultHTTPReadTimeout || l.MaxBatchItems != DefaultMaxBatchItems {
					t.Errorf("%s says it shows the defaults, but parses to %+v", s.where, l)
				}
			}
		}
	}
	t.Logf("snippets per file: %v; by kind: %v", perFile, kinds)
	// The documents show all of these; finding none means the extraction
	// broke, not that the docs are right.
	for k, atLeast := range map[string]int{`storage "raft"`: 3, `listener "tcp"`: 3, "retry_join": 1, `audit "`: 2, `seal "pkcs11"`: 1, `path "`: 1} {
		if kinds[k] < atLeast {
			t.Errorf("found %d snippets with %s in the docs, want at least %d", kinds[k], k, atLeast)
		}
	}
	if !limits {
		t.Error("found no listener snippet with the limits (http_read_timeout)")
	}
}

// TestDocSnippetsFindsEveryForm checks the extraction on the forms a doc
// can write HCL in, the broken one-line block among them: each must be
// found and each broken one refused.
func TestDocSnippetsFindsEveryForm(t *testing.T) {
	md := strings.Join([]string{
		"Indented, with a command after a blank line:",
		"",
		"    audit \"file\" { path = \"/a.log\", keep = 10 }",
		"",
		"    keyraft server -config keyraft.hcl",
		"",
		"A command first, then the config in the same paragraph:",
		"",
		"    keyraft server -config x.hcl",
		"    listener \"tcp\" { adress = \"127.0.0.1:1\" }",
		"",
		"A fence without a language and one with hcl:",
		"",
		"```",
		"plugin_direktory = \"/p\"",
		"```",
		"",
		"```hcl",
		"# only a comment, but marked hcl",
		"api_addr = 5",
		"```",
		"",
		"```sh",
		"storage \"raft\" { this is shell, not checked }",
		"```",
		"",
		"A transcript:",
		"",
		"    $ cat app.hcl",
		"    path \"transit/encrypt/app\" { capabilities = [\"fly\"] }",
		"    $ keyraft policy write app app.hcl",
		"",
		"Inline: `storage \"raft\" { plugin = \"bolt\", path = \"/d\" }` and `autopilot { min_quorum = 0 }`.",
		"",
		"Fine ones: `storage \"raft\" { plugin = \"bolt\" }`,",
		"",
		"    retry_join { leader_api_addr = \"https://10.0.0.2:8200\" }",
		"",
	}, "\n")
	path := filepath.Join(t.TempDir(), "x.md")
	if err := os.WriteFile(path, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	snips := docSnippets(t, path)
	var where, bad []string
	for _, s := range snips {
		where = append(where, s.where)
		if _, err := parseSnippet(s); err != nil {
			bad = append(bad, s.where)
		}
	}
	wantAll := []string{"x.md:3", "x.md:9", "x.md:15", "x.md:19", "x.md:30", "x.md:33", "x.md:33", "x.md:35", "x.md:37"}
	wantBad := []string{"x.md:3", "x.md:9", "x.md:15", "x.md:19", "x.md:30", "x.md:33", "x.md:33"}
	if strings.Join(where, " ") != strings.Join(wantAll, " ") {
		t.Errorf("found snippets at %v, want %v", where, wantAll)
	}
	if strings.Join(bad, " ") != strings.Join(wantBad, " ") {
		t.Errorf("refused %v, want %v", bad, wantBad)
	}
}
