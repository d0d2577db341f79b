package acl

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	manyRules := strings.Repeat("path \"a\" { capabilities = [\"read\"] }\n", MaxRules+1)
	manyConds := "path \"a\" {\n  capabilities = [\"read\"]\n" +
		strings.Repeat("  condition { time_window = \"08:00-09:00\" }\n", maxConditions+1) + "}\n"
	cases := []struct {
		name      string
		src       string
		line, col int
		field     string
		msg       string // a substring of the message
	}{
		{"top-level argument", `foo = 1`, 1, 1, "foo", `unsupported argument "foo"; a policy holds only path`},
		{"path as argument", "\npath = \"x\"", 2, 1, "path", `"path" is a block, not an argument`},
		{"misspelled path", `paht "x" { capabilities = ["read"] }`, 1, 1, "paht", `unsupported block type "paht"; a policy holds only path "…" { … } blocks; did you mean "path"?`},
		{"path without label", `path { capabilities = ["read"] }`, 1, 1, "path", "path block needs one label, the path pattern"},
		{"path with two labels", `path "a" "b" { capabilities = ["read"] }`, 1, 1, "path", "needs one label"},
		{"empty pattern", `path "" { capabilities = ["read"] }`, 1, 6, "path", `path pattern "" is empty; "*" matches every path`},
		{"leading slash", "# c\npath \"/v1/transit/*\" { capabilities = [\"read\"] }", 2, 6, "path", `path pattern "/v1/transit/*" starts with "/"`},
		{"star in the middle", `path "transit/*/keys" { capabilities = ["read"] }`, 1, 6, "path", `has "*" before its end`},
		{"plus inside a segment", `path "transit/key+/x" { capabilities = ["read"] }`, 1, 6, "path", `has "+" inside a segment`},
		{"plus star", `path "transit/+*" { capabilities = ["read"] }`, 1, 6, "path", `ends with "+*"`},
		{"empty segment", `path "transit//keys" { capabilities = ["read"] }`, 1, 6, "path", `has an empty segment`},
		{"dot-dot segment", `path "transit/../sys" { capabilities = ["read"] }`, 1, 6, "path", `"." or ".." segment`},
		{"control character in pattern", `path "transit/\u0001" { capabilities = ["read"] }`, 1, 6, "path", "control character"},
		{"long pattern", `path "` + strings.Repeat("a", maxPatternLen+1) + `" { capabilities = ["read"] }`, 1, 6, "path", "longer than 512 bytes"},
		{"capabilities missing", "path \"transit/*\" {\n}", 1, 1, "capabilities", `capabilities is missing in path "transit/*"`},
		{"unknown capability", "path \"transit/*\" {\n  capabilities = [\"read\", \"raed\"]\n}", 2, 27, "capabilities", `capabilities in path "transit/*": unknown capability "raed"; did you mean "read"?`},
		{"write capability", "path \"transit/*\" {\n  capabilities = [\"write\"]\n}", 2, 19, "capabilities", `unknown capability "write"; Vault's "write" is "create" and "update"`},
		{"unknown capability, no guess", `path "a" { capabilities = ["everything"] }`, 1, 28, "capabilities", "capabilities are create, read, update, patch, delete, list, sudo and deny"},
		{"capabilities a string", "path \"a\" {\n  capabilities = \"read\"\n}", 2, 18, "capabilities", `capabilities in path "a" must be a list of strings such as ["read"], not string`},
		{"capabilities empty", "path \"a\" {\n  capabilities = []\n}", 2, 18, "capabilities", `capabilities in path "a" is empty; to refuse access write ["deny"]`},
		{"capabilities with a number", "path \"a\" {\n  capabilities = [\"read\", 1]\n}", 2, 27, "capabilities", "item 2 is number"},
		{"deny with others", "path \"a\" {\n  capabilities = [\"read\", \"deny\"]\n}", 2, 18, "capabilities", `"deny" with other capabilities`},
		{"capabilities twice", "path \"a\" {\n  capabilities = [\"read\"]\n  capabilities = [\"list\"]\n}", 3, 3, "", `argument "capabilities" is set twice; the first is on line 2`},
		{"capabilities as block", "path \"a\" {\n  capabilities { }\n}", 2, 3, "capabilities", "is an argument, not a block"},
		{"misspelled capabilities", "path \"a\" {\n  capabilites = [\"read\"]\n}", 2, 3, "capabilites", `unsupported argument "capabilites" in path "a"; did you mean "capabilities"?`},
		{"allowed_parameters", "path \"a\" {\n  capabilities = [\"update\"]\n  allowed_parameters = { \"plaintext\" = [] }\n}", 3, 3, "allowed_parameters", "is a Vault feature keyraft does not support"},
		{"control_group block", "path \"a\" {\n  capabilities = [\"update\"]\n  control_group { }\n}", 3, 3, "control_group", "Vault feature"},
		{"legacy policy", "path \"a\" {\n  policy = \"write\"\n}", 2, 3, "policy", "Vault's old syntax"},
		{"variables", "path \"a\" {\n  capabilities = [var.cap]\n}", 2, 19, "capabilities", "variables not allowed"},
		{"function call", "path \"a\" {\n  capabilities = upper([\"read\"])\n}", 2, 18, "capabilities", "function calls not allowed"},
		{"condition as argument", "path \"a\" {\n  capabilities = [\"read\"]\n  condition = { time_window = \"08:00-09:00\" }\n}", 3, 3, "condition", "is a block, not an argument"},
		{"condition with label", "path \"a\" {\n  capabilities = [\"read\"]\n  condition \"ip\" { source_cidrs = [\"10.0.0.0/8\"] }\n}", 3, 13, "condition", `condition block in path "a" takes no label`},
		{"empty condition", "path \"a\" {\n  capabilities = [\"read\"]\n  condition {}\n}", 3, 3, "condition", "empty condition block"},
		{"block in condition", "path \"a\" {\n  capabilities = [\"read\"]\n  condition {\n    any { }\n  }\n}", 4, 5, "any", `unsupported block type "any" in a condition of path "a"`},
		{"misspelled condition field", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { source_cidr = [\"10.0.0.0/8\"] }\n}", 3, 15, "source_cidr", `unsupported argument "source_cidr" in a condition of path "a"; did you mean "source_cidrs"?`},
		{"bad CIDR", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { source_cidrs = [\"10.0.0.0/8\", \"10.0.0.0/33\"] }\n}", 3, 45, "source_cidrs", `source_cidrs in a condition of path "a": "10.0.0.0/33" is not a network in CIDR notation`},
		{"CIDR with host bits", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { source_cidrs = [\"10.1.2.3/8\"] }\n}", 3, 31, "source_cidrs", `has bits set past the prefix length: did you mean "10.0.0.0/8"?`},
		{"address, not CIDR", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { source_cidrs = [\"2001:db8::1\"] }\n}", 3, 31, "source_cidrs", `is an address, not a network: write "2001:db8::1/128"`},
		{"IPv4-mapped CIDR", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { source_cidrs = [\"::ffff:10.0.0.0/104\"] }\n}", 3, 31, "source_cidrs", "IPv4-mapped"},
		{"CIDR list empty", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { source_cidrs = [] }\n}", 3, 30, "source_cidrs", "source_cidrs in a condition of path \"a\" is empty"},
		{"time window format", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { time_window = \"8:00-18:00\" }\n}", 3, 29, "time_window", `time_window in a condition of path "a": "8:00-18:00" must be "HH:MM-HH:MM" in UTC`},
		{"time window hour", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { time_window = \"25:00-01:00\" }\n}", 3, 29, "time_window", `must be "HH:MM-HH:MM"`},
		{"time window empty", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { time_window = \"08:00-08:00\" }\n}", 3, 29, "time_window", "is empty: it starts where it ends"},
		{"time window from 24:00", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { time_window = \"24:00-06:00\" }\n}", 3, 29, "time_window", "starts at 24:00"},
		{"time window a number", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { time_window = 800 }\n}", 3, 29, "time_window", `must be a string such as "08:00-18:00", not number`},
		{"context a string", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { required_context = \"acme\" }\n}", 3, 34, "required_context", `must be a map such as { tenant = "acme" }, not string`},
		{"context empty", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { required_context = {} }\n}", 3, 34, "required_context", "is empty"},
		{"context value a number", "path \"a\" {\n  capabilities = [\"read\"]\n  condition {\n    required_context = {\n      tenant = \"acme\"\n      version = 3\n    }\n  }\n}", 6, 17, "required_context", `the value of "version" must be a string, not number`},
		{"context key twice", "path \"a\" {\n  capabilities = [\"read\"]\n  condition {\n    required_context = {\n      tenant = \"acme\"\n      \"tenant\" = \"other\"\n    }\n  }\n}", 6, 7, "required_context", `key "tenant" is given twice; the first is on line 5`},
		{"context empty key", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { required_context = { \"\" = \"x\" } }\n}", 3, 36, "required_context", "a key is empty"},
		{"context control character", "path \"a\" {\n  capabilities = [\"read\"]\n  condition { required_context = { t = \"a\\nb\" } }\n}", 3, 40, "required_context", `the value of "t" contains a control character`},
		{"too many conditions", manyConds, 3 + maxConditions, 15, "time_window", `time_window in a condition of path "a": more than 16 conditions in one path block`},
		{"syntax error", "path \"a\" {\n  capabilities = [\"read\"\n}", 3, 1, "", "missing item separator"},
		{"unclosed block", "path \"a\" {\n  capabilities = [\"read\"]\n", 1, 10, "", "unclosed configuration block"},
		{"JSON", `{"path": {"a": {"capabilities": ["read"]}}}`, 1, 1, "", "JSON policies are not supported"},
		{"too many rules", manyRules, MaxRules + 1, 1, "path", "more than 1000 path blocks"},
		{"too large", "# " + strings.Repeat("x", MaxPolicySize), 1, 1, "", "the limit is 131072"},
		{"too deep", "path \"a\" { capabilities = " + strings.Repeat("[", 40), 1, 58, "", "nested more than 32 levels deep"},
	}
	if len(cases) < 15 {
		t.Fatal("the table shrank")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse("ops", []byte(c.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %s", p)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("message has several lines: %q", msg)
			}
			if pe.Line != c.line || pe.Column != c.col {
				t.Errorf("position %d,%d, want %d,%d: %s", pe.Line, pe.Column, c.line, c.col, msg)
			}
			if pe.Field != c.field {
				t.Errorf("Field = %q, want %q: %s", pe.Field, c.field, msg)
			}
			if want := fmt.Sprintf("ops:%d,%d: ", c.line, c.col); !strings.HasPrefix(msg, want) {
				t.Errorf("message %q does not start with %q", msg, want)
			}
			if c.field != "" && !strings.Contains(msg, c.field) {
				t.Errorf("message %q does not name the field %q", msg, c.field)
			}
			if !strings.Contains(msg, c.msg) {
				t.Errorf("message %q does not contain %q", msg, c.msg)
			}
		})
	}
}

func TestParseName(t *testing.T) {
	for _, name := range []string{"", "root", "ROOT", "a b", "a\nb", "\xff", strings.Repeat("n", maxNameLen+1)} {
		_, err := Parse(name, []byte(`path "a" { capabilities = ["read"] }`))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Field != "name" || strings.ContainsAny(err.Error(), "\n") ||
			!strings.HasPrefix(err.Error(), "policy name ") {
			t.Errorf("Parse(%q): %v", name, err)
		}
	}
	for _, name := range []string{"default", "ops-team", "app.v2", "rooted", "é"} {
		if _, err := Parse(name, nil); err != nil {
			t.Errorf("Parse(%q): %v", name, err)
		}
	}
}

// Good policies: each parses, and Parse(String()) gives the same policy.
var goodPolicies = map[string]string{
	"doc":   docPolicy,
	"empty": "",
	"comments": `# nothing but comments
// and more
/* and more */`,
	"deny":      `path "*" { capabilities = ["deny", "deny"] }`,
	"every cap": `path "*" { capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"] }`,
	"duplicates": `path "a" {
  capabilities = ["read", "read", "list"]
}
path "a" { capabilities = ["update"] }`,
	"globs": `
path "transit/keys/" { capabilities = ["list"] }
path "transit/keys" { capabilities = ["list"] }
path "+" { capabilities = ["read"] }
path "+/+/+" { capabilities = ["read"] }
path "transit/+/app*" { capabilities = ["read"] }
path "transit/keys/.hidden*" { capabilities = ["read"] }
path "transit/export/.*" { capabilities = ["read"] }
`,
	"conditions": `path "transit/*" {
  capabilities = ["read"]
  condition {
    source_cidrs     = ["10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0", "::/0", "192.0.2.1/32"]
    time_window      = "22:00-06:00"
    required_context = { "tenant" = "acme", env = "prod", "with space" = "", "ünï" = "çødé" }
  }
  condition { time_window = "18:00-00:00" }
  condition { time_window = "00:00-24:00" }
}`,
	"escapes": `path "weird/$${x}/%%{y}/\"q\"/back\\slash/$$/%%" {
  capabilities = ["read"]
  condition { required_context = { "$${k}" = "%%{v}", "\\" = "\"" } }
}`,
	"templates": `path "transit/*" { capabilities = ["re${"ad"}", "${"li"}st"] }`,
	"heredoc": `path "a" {
  capabilities = [<<EOT
read
EOT
  ]
}`,
}

func TestParseRoundTrip(t *testing.T) {
	for name, src := range goodPolicies {
		t.Run(name, func(t *testing.T) {
			p, err := Parse("p", []byte(src))
			if err != nil {
				if name == "heredoc" {
					// A heredoc ends in a newline: "read\n" is not a
					// capability, and that must be an error.
					return
				}
				t.Fatalf("Parse: %v", err)
			}
			if name == "heredoc" {
				t.Fatalf("heredoc with a newline accepted: %s", p)
			}
			text := p.String()
			q, err := Parse("p", []byte(text))
			if err != nil {
				t.Fatalf("Parse(String()): %v\n%s", err, text)
			}
			if !reflect.DeepEqual(p, q) {
				t.Fatalf("Parse(String()) differs:\n%s\nvs\n%s", text, q)
			}
			if q.String() != text {
				t.Fatalf("String is not stable:\n%s\nvs\n%s", text, q)
			}
		})
	}
}

func TestStringCanonical(t *testing.T) {
	p := mustParse(t, "p", `
# a comment
path "transit/*" {
  condition { required_context = { z = "1", a = "2" } }
  capabilities = ["list", "read", "list"]
  condition {
    time_window  = "18:00-00:00"
    source_cidrs = ["10.0.0.0/8"]
  }
}
path "k" { capabilities = ["deny"] }
`)
	want := `path "transit/*" {
  capabilities = ["read", "list"]
  condition {
    required_context = {
      "a" = "2"
      "z" = "1"
    }
  }
  condition {
    time_window = "18:00-24:00"
  }
  condition {
    source_cidrs = ["10.0.0.0/8"]
  }
}

path "k" {
  capabilities = ["deny"]
}
`
	if got := p.String(); got != want {
		t.Fatalf("String:\n%s\nwant:\n%s", got, want)
	}
	if got := Root.String(); !strings.HasPrefix(got, "# root") {
		t.Errorf("Root.String() = %q", got)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:  `"plain"`,
		`${x}`:   `"$${x}"`,
		`%{x}`:   `"%%{x}"`,
		`$${x}`:  `"$$${x}"`,
		`$x`:     `"$x"`,
		`a"b\c`:  `"a\"b\\c"`,
		"a\x01b": `"a\u0001b"`,
		"\xff":   `"\ufffd"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCapabilityFor(t *testing.T) {
	for _, c := range []struct {
		method, path string
		exists       bool
		want         string
	}{
		{"GET", "/v1/transit/keys/app", true, Read},
		{"HEAD", "/v1/sys/health", true, Read},
		{"get", "transit/keys/app", false, Read},
		{"GET", "/v1/transit/keys?list=true", true, List},
		{"GET", "/v1/transit/keys?list=1", true, List},
		{"GET", "/v1/transit/keys?list=false", true, Read},
		{"GET", "/v1/transit/keys?list=maybe", true, Read},
		{"GET", "/v1/transit/keys?other=1&list=true", true, List},
		{"LIST", "/v1/transit/keys", true, List},
		{"POST", "/v1/transit/encrypt/app", true, Update},
		{"POST", "/v1/transit/encrypt/app", false, Create},
		{"PUT", "transit/encrypt/app", false, Create},
		{"POST", "/v1/transit/encrypt/app/", false, Create},
		{"POST", "/v1/transit/encrypt/app?x=1", false, Create},
		{"POST", "/v1/transit/decrypt/app", false, Update},
		{"POST", "/v1/transit/keys/app", false, Update},
		{"POST", "/v1/transit/keys/app", true, Update},
		{"POST", "/v1/transit/keys/app/rotate", true, Update},
		{"POST", "/v1/transit/encrypt/", false, Update},
		{"POST", "/v1/transit/encrypt/a/b", false, Update},
		{"POST", "/v1/sys/policies/acl/ops", false, Update},
		{"PATCH", "/v1/transit/keys/app", true, Patch},
		{"DELETE", "/v1/transit/keys/app", true, Delete},
		{"OPTIONS", "/v1/transit/keys/app", true, ""},
		{"TRACE", "/v1/transit/keys/app", true, ""},
	} {
		if got := CapabilityFor(c.method, c.path, c.exists); got != c.want {
			t.Errorf("CapabilityFor(%q, %q, %v) = %q, want %q", c.method, c.path, c.exists, got, c.want)
		}
	}
	if d := Evaluate([]*Policy{Root}, Request{Path: "a", Capability: CapabilityFor("OPTIONS", "a", true)}); d.Allowed {
		t.Errorf("an unknown method was allowed: %+v", d)
	}
}
