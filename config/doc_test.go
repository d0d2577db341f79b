package config

import (
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
