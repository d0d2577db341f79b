package acl_test

import (
	"fmt"
	"net"
	"time"

	"github.com/keyraft/keyraft/acl"
)

func ExampleEvaluate() {
	app, err := acl.Parse("app", []byte(`
path "transit/encrypt/app" { capabilities = ["update"] }

path "transit/keys/*" {
  capabilities = ["read"]
  condition { source_cidrs = ["10.0.0.0/8"] }
}
`))
	if err != nil {
		panic(err)
	}
	never, err := acl.Parse("never-decrypt", []byte(`path "transit/decrypt/*" { capabilities = ["deny"] }`))
	if err != nil {
		panic(err)
	}
	policies := []*acl.Policy{app, never}
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	for _, r := range []struct{ method, path string }{
		{"POST", "transit/encrypt/app"},
		{"POST", "transit/decrypt/app"},
		{"GET", "transit/keys/app"},
		{"DELETE", "transit/keys/app"},
	} {
		d := acl.Evaluate(policies, acl.Request{
			Path:       r.path,
			Capability: acl.CapabilityFor(r.method, r.path, true),
			RemoteIP:   net.ParseIP("192.0.2.7"),
			Time:       now,
		})
		fmt.Printf("%s %s: %v: %s\n", r.method, r.path, d.Allowed, d.Reason)
	}
	// Output:
	// POST transit/encrypt/app: true: allowed by policy "app" rule "transit/encrypt/app"
	// POST transit/decrypt/app: false: denied by policy "never-decrypt" rule "transit/decrypt/*"
	// GET transit/keys/app: false: policy "app" rule "transit/keys/*" grants read on transit/keys/app only when its conditions hold: source address 192.0.2.7 is not in source_cidrs [10.0.0.0/8]
	// DELETE transit/keys/app: false: the most specific rule for transit/keys/app, policy "app" rule "transit/keys/*", does not grant delete
}

func ExampleParse_error() {
	_, err := acl.Parse("ops", []byte(`path "transit/*" {
  capabilities = ["read", "raed"]
}`))
	fmt.Println(err)
	// Output:
	// ops:2,27: capabilities in path "transit/*": unknown capability "raed"; did you mean "read"?
}

func ExamplePolicy_String() {
	p, err := acl.Parse("ops", []byte(`
path "transit/*" {
  capabilities = ["list", "read", "list"]
  condition { time_window = "22:00-06:00" }   # at night only
}`))
	if err != nil {
		panic(err)
	}
	fmt.Print(p)
	// Output:
	// path "transit/*" {
	//   capabilities = ["read", "list"]
	//   condition {
	//     time_window = "22:00-06:00"
	//   }
	// }
}
