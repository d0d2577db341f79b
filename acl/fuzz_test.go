package acl

import (
	"net"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that every error is
// one line that starts with the policy name, and that every accepted
// policy survives Parse(String()) unchanged and can be evaluated.
func FuzzParse(f *testing.F) {
	for _, src := range goodPolicies {
		f.Add([]byte(src))
	}
	f.Add([]byte(`path "transit/keys/+/rotate" { capabilities = ["update", "sudo"] }`))
	f.Add([]byte(`path "a" { capabilities = ["read"] condition { source_cidrs = ["10.1.2.3/8"] } }`))
	f.Add([]byte("path \"a\" {\n  capabilities = [\"read\"]\n  condition { required_context = { \"$${a}\" = \"%%{b}\\\\\" } }\n}"))
	f.Add([]byte("path \"a\" { capabilities = " + strings.Repeat("[", 50)))
	f.Add([]byte(`{"path": {"a": {"capabilities": ["read"]}}}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("fuzz", src)
		if err != nil {
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error has several lines: %q", msg)
			}
			if !strings.HasPrefix(msg, "fuzz:") {
				t.Fatalf("error does not start with the policy name: %q", msg)
			}
			return
		}
		text := p.String()
		q, err := Parse("fuzz", []byte(text))
		if err != nil {
			t.Fatalf("Parse(String()): %v\nsource:\n%q\nString:\n%s", err, src, text)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("Parse(String()) differs\nsource:\n%q\nString:\n%s\nagain:\n%s", src, text, q)
		}
		if q.String() != text {
			t.Fatalf("String is not stable:\n%s\nvs\n%s", text, q)
		}
		for _, r := range p.rules {
			for _, c := range []string{Read, List, Update} {
				d := Evaluate([]*Policy{p}, Request{Path: strings.TrimSuffix(strings.ReplaceAll(r.lit, "+", "x"), "/") + "/k",
					Capability: c, RemoteIP: net.ParseIP("10.0.0.1"), Time: at("12:00:00"), Context: map[string]string{"tenant": "acme"}})
				if d.Reason == "" || strings.ContainsAny(d.Reason, "\n\r") {
					t.Fatalf("bad reason %q", d.Reason)
				}
			}
		}
	})
}
