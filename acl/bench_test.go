package acl

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// benchPolicies returns n policies of m rules each, shaped like a real
// deployment: per-application exact rules, globs, + patterns, a deny, and
// conditions on some rules.
func benchPolicies(b *testing.B, n, m int) []*Policy {
	var ps []*Policy
	for i := 0; i < n; i++ {
		var src strings.Builder
		for j := 0; j < m; j++ {
			app := fmt.Sprintf("app%d-%d", i, j)
			switch j % 5 {
			case 0:
				fmt.Fprintf(&src, "path \"transit/encrypt/%s\" { capabilities = [\"update\"] }\n", app)
			case 1:
				fmt.Fprintf(&src, "path \"transit/decrypt/%s\" {\n  capabilities = [\"update\"]\n  condition { source_cidrs = [\"10.%d.0.0/16\", \"2001:db8:%x::/48\"] }\n}\n", app, i, j)
			case 2:
				fmt.Fprintf(&src, "path \"transit/keys/%s*\" {\n  capabilities = [\"read\", \"list\"]\n  condition { time_window = \"06:00-22:00\" }\n}\n", app)
			case 3:
				fmt.Fprintf(&src, "path \"transit/+/%s/rotate\" { capabilities = [\"update\", \"sudo\"] }\n", app)
			case 4:
				fmt.Fprintf(&src, "path \"transit/export/%s/*\" { capabilities = [\"deny\"] }\n", app)
			}
		}
		p, err := Parse(fmt.Sprintf("p%d", i), []byte(src.String()))
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// BenchmarkEvaluate evaluates against 10 policies of 20 rules each (200
// rules): the request is granted by a conditional rule of the last policy.
func BenchmarkEvaluate(b *testing.B) {
	ps := benchPolicies(b, 10, 20)
	req := Request{Path: "transit/decrypt/app9-16", Capability: Update, RemoteIP: net.ParseIP("10.9.1.2"), Time: at("12:00:00")}
	if d := Evaluate(ps, req); !d.Allowed {
		b.Fatalf("not allowed: %s", d.Reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(ps, req)
	}
}

// BenchmarkEvaluateDenied is the same with a request nothing grants.
func BenchmarkEvaluateDenied(b *testing.B) {
	ps := benchPolicies(b, 10, 20)
	req := Request{Path: "transit/decrypt/unknown", Capability: Update, RemoteIP: net.ParseIP("10.9.1.2"), Time: at("12:00:00")}
	if d := Evaluate(ps, req); d.Allowed {
		b.Fatal("allowed")
	}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(ps, req)
	}
}

// BenchmarkParseLarge parses a policy near the limits: MaxRules rules in
// nearly MaxPolicySize bytes.
func BenchmarkParseLarge(b *testing.B) {
	var src strings.Builder
	for i := 0; i < MaxRules; i++ {
		fmt.Fprintf(&src, "path \"transit/encrypt/a%d\" { capabilities = [\"update\"] }\n", i)
	}
	if src.Len() > MaxPolicySize {
		b.Fatalf("%d bytes", src.Len())
	}
	in := []byte(src.String())
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Parse("big", in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseCIDRs parses a policy that is one long source_cidrs list
// after another, up to the size limit.
func BenchmarkParseCIDRs(b *testing.B) {
	var src strings.Builder
	for r := 0; src.Len() < MaxPolicySize-8<<10; r++ {
		fmt.Fprintf(&src, "path \"k/%d\" {\n  capabilities = [\"read\"]\n  condition { source_cidrs = [", r)
		for i := 0; i < maxCIDRs; i++ {
			fmt.Fprintf(&src, "\"10.%d.%d.0/24\", ", r%256, i)
		}
		src.WriteString("] }\n}\n")
	}
	in := []byte(src.String())
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Parse("big", in); err != nil {
			b.Fatal(err)
		}
	}
}
