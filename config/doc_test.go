package config

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestDocExample parses the storage and listener blocks and the top-level
// settings of the example in doc.go (the seal blocks show alternatives
// that cannot all be in one file), and checks that the listener limits it
// shows are the defaults its comments say they are.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var hcl []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		code, ok := strings.CutPrefix(line, "//\t")
		switch {
		case !ok && in && line == "//":
			hcl = append(hcl, "")
			continue
		case !ok:
			in = false
			continue
		case strings.HasPrefix(code, "storage \"raft\" {"), strings.HasPrefix(code, "listener \"tcp\" {"), strings.HasPrefix(code, "api_addr"):
			in = true
		case strings.HasPrefix(code, "seal "):
			in = false
		}
		if in {
			hcl = append(hcl, code)
		}
	}
	text := strings.Join(hcl, "\n")
	for _, want := range []string{`storage "raft" {`, `listener "tcp" {`, "http_read_timeout", "max_batch_items", "api_addr", "disable_mlock"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the doc.go example lost %q; extracted:\n%s", want, text)
		}
	}
	c, err := Parse([]byte(text), "doc.go")
	if err != nil {
		t.Fatalf("the doc.go example does not parse: %v\n%s", err, text)
	}
	// The example shows the defaults: a listener without the settings
	// gets the same values.
	bare := Listener{Type: "tcp", Address: "127.0.0.1:8200", TLSDisable: true}
	if err := bare.validate("listener[0]"); err != nil {
		t.Fatal(err)
	}
	l := c.Listeners[0]
	if l.HTTPReadHeaderTimeout != bare.HTTPReadHeaderTimeout || l.HTTPReadTimeout != bare.HTTPReadTimeout ||
		l.HTTPWriteTimeout != bare.HTTPWriteTimeout || l.HTTPIdleTimeout != bare.HTTPIdleTimeout ||
		l.MaxBatchItems != bare.MaxBatchItems || l.MaxTokenBatchItemsInFlight != bare.MaxTokenBatchItemsInFlight ||
		l.MaxRequestSize != bare.MaxRequestSize {
		t.Errorf("the doc.go example's listener limits are not the defaults:\n doc:      %+v\n defaults: %+v", l, bare)
	}
}

// TestReadmeConfigs parses every server config snippet of the README: an
// indented block that starts with a storage or listener block, up to its
// first blank line (the commands that follow some snippets are not HCL).
// A listener-only snippet is parsed under a minimal storage block.
func TestReadmeConfigs(t *testing.T) {
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var snippets []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			snippets = append(snippets, strings.Join(cur, "\n"))
		}
		cur = nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		code, indented := strings.CutPrefix(sc.Text(), "    ")
		switch {
		case !indented || strings.TrimSpace(code) == "":
			flush()
		case cur == nil && (strings.HasPrefix(code, `storage "raft" {`) || strings.HasPrefix(code, `listener "tcp" {`)):
			cur = []string{code}
		case cur != nil:
			cur = append(cur, code)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	limits := false
	for i, s := range snippets {
		src := s
		if strings.HasPrefix(s, "listener") {
			src = "storage \"raft\" {\n  path    = \"/data\"\n  node_id = \"n\"\n}\n" + s
		}
		c, err := Parse([]byte(src), "README.md")
		if err != nil {
			t.Errorf("README config snippet %d does not parse: %v\n%s", i+1, err, s)
			continue
		}
		if strings.Contains(s, "http_read_timeout") {
			limits = true
			if l := c.Listeners[0]; l.HTTPReadTimeout != DefaultHTTPReadTimeout || l.MaxBatchItems != DefaultMaxBatchItems {
				t.Errorf("README snippet %d says it shows the defaults, but parses to %+v", i+1, l)
			}
		}
	}
	if len(snippets) < 3 || !limits {
		t.Errorf("found %d config snippets in the README (want at least 3, one with the listener limits)", len(snippets))
	}
}

// TestAuditDocConfigs parses every audit block of the README and of
// docs/audit.md (indented lines starting with `audit "`) in a minimal
// config, each up to its closing brace, so the documented options are
// the ones the parser takes.
func TestAuditDocConfigs(t *testing.T) {
	n := 0
	for _, doc := range []string{"../README.md", "../docs/audit.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			if !strings.HasPrefix(lines[i], `    audit "`) {
				continue
			}
			block := []string{}
			for ; i < len(lines) && strings.HasPrefix(lines[i], "    "); i++ {
				block = append(block, strings.TrimPrefix(lines[i], "    "))
				if lines[i] == "    }" {
					break
				}
			}
			code := strings.Join(block, "\n")
			n++
			src := "storage \"raft\" {\n  path    = \"/data\"\n  node_id = \"n\"\n}\nlistener \"tcp\" {\n  address = \"127.0.0.1:8200\"\n  tls_disable = true\n}\n" + code + "\n"
			if _, err := Parse([]byte(src), doc); err != nil {
				t.Errorf("%s: %q does not parse: %v", doc, code, err)
			}
		}
	}
	if n < 6 {
		t.Errorf("found %d audit blocks in the docs, want at least 6", n)
	}
}
