// Package acl decides whether a caller may do what it asks: the policies
// of its token, their path rules and their conditions, evaluated by one
// pure function before any key is touched. Nothing is allowed unless a
// policy allows it.
//
// # Policies
//
// A policy is HCL in the shape of a HashiCorp Vault ACL policy, so that
// an operator's Vault policies mostly carry over:
//
//	# Applications may encrypt with their key, and never decrypt.
//	path "transit/encrypt/app" {
//	  capabilities = ["update"]
//	}
//
//	path "transit/decrypt/*" {
//	  capabilities = ["deny"]
//	}
//
//	path "transit/keys/+/rotate" {
//	  capabilities = ["update", "sudo"]
//	}
//
//	path "transit/*" {
//	  capabilities = ["read", "list"]
//	  condition { source_cidrs = ["10.0.0.0/8", "2001:db8::/32"] }
//	  condition { time_window = "08:00-18:00" }                  # UTC
//	  condition { required_context = { tenant = "acme" } }
//	}
//
// A policy is a list of path blocks, called rules. Each names a path
// pattern and the capabilities it grants there, and may add conditions.
// Parse reads a policy; String gives back its canonical source, from
// which Parse builds an equal policy.
//
// # Capabilities
//
// The capabilities are Vault's. Each request needs one, which
// CapabilityFor derives from the HTTP method as Vault does:
//
//	capability  HTTP request                         for example
//	----------  -----------------------------------  -----------------------------------------
//	read        GET, HEAD                            GET /v1/transit/keys/app
//	list        LIST, or GET with ?list=true         LIST /v1/transit/keys
//	update      POST, PUT                            POST /v1/transit/encrypt/app (key exists),
//	                                                 POST /v1/transit/decrypt/app,
//	                                                 POST /v1/transit/keys/app (creates the key)
//	create      POST, PUT where the write creates    POST /v1/transit/encrypt/app when the key
//	            what the path names                  does not exist yet (the upsert)
//	patch       PATCH                                (no keyraft endpoint takes PATCH yet)
//	delete      DELETE                               DELETE /v1/transit/keys/app
//	sudo        never from a method: asked for as a  a root-protected sys/ path
//	            second Request by the caller
//	deny        only in policies: refuses them all
//
// Create and update follow Vault's existence check. Only a path whose
// backend can create what it names on a write has one; in keyraft that is
// transit/encrypt/:name, whose write creates a missing key. There a write
// needs create when the key does not exist and update when it does, so
// update alone lets a client encrypt under existing keys but never create
// one. Every other write needs update, even one that creates something:
// POST transit/keys/:name creates a key with update in Vault, and here.
// A policy that grants ["create", "update"] on a path covers both cases.
//
// # Patterns
//
// A pattern is a Vault path without the leading slash or /v1/:
//
//	pattern                  matches                                    not
//	-----------------------  -----------------------------------------  ------------------------------
//	transit/keys/app         transit/keys/app                           transit/keys/app2
//	transit/keys/*           transit/keys/, transit/keys/app,           transit/keys
//	                         transit/keys/app/rotate
//	transit/keys/app*        transit/keys/app, transit/keys/app2,       transit/keys/ap
//	                         transit/keys/apple/config
//	transit/keys/+/rotate    transit/keys/app/rotate                    transit/keys/rotate,
//	                                                                    transit/keys/a/b/rotate
//	transit/+/app*           transit/encrypt/app, transit/decrypt/app1  transit/encrypt/web
//	*                        every path
//
// A "*" may only end a pattern; it matches any rest, slashes included.
// A "+" stands for exactly one whole, non-empty segment. A list request is
// checked on its path with a trailing slash, as Vault does, and an exact
// pattern also grants list on its path with the slash: path "transit/keys"
// with ["list"] allows LIST /v1/transit/keys. Every other request is
// checked on its path without a trailing slash, because keyraft's router
// serves transit/keys/app/ as transit/keys/app: a trailing slash cannot
// step around a rule.
//
// # Conditions
//
// A condition block holds one or more tests:
//
//   - source_cidrs: the client's address is in one of the networks, IPv4
//     or IPv6; an IPv4-mapped IPv6 address is checked as IPv4.
//   - time_window: the request's time, in UTC, is in "HH:MM-HH:MM". The
//     start is included, the end is not; a window whose start is after
//     its end wraps past midnight ("22:00-06:00"); "24:00" (or "00:00")
//     as the end means midnight.
//   - required_context: each key is present in the request's associated
//     data or encryption context (Request.Context) with exactly that
//     value. Other keys may be present too.
//
// All the tests of all the condition blocks of a rule must hold for the
// rule to apply. A test that needs what the request lacks fails: no
// address, no time, no context. A rule whose conditions fail grants
// nothing, and a deny rule whose conditions fail refuses nothing.
//
// # Precedence
//
// A token has one or more policies. For a request, Evaluate considers the
// rules of all of them whose pattern matches the path, and decides in this
// order:
//
//  1. Deny wins. If any matching deny rule, in any of the policies, has
//     conditions that hold, the request is denied; however specific the
//     rules that grant it, and even for the root policy.
//  2. Root allows. If Root is among the policies, the request is allowed.
//  3. The most specific pattern decides. Among the matching rules that are
//     not deny rules, the most specific pattern is chosen by Vault's rules:
//     an exact pattern beats any with "+" or "*"; then the pattern whose
//     first "+" or "*" comes later; then one without a trailing "*"; then
//     the one with fewer "+" segments; then the longer; then the greater
//     in byte order. The rules with that pattern, from every policy,
//     together decide: the request is allowed if one of them grants the
//     capability and its conditions hold.
//  4. Otherwise the request is denied: nothing matched, the most specific
//     pattern does not grant the capability, or its conditions failed.
//
// So a token's policies add up (several policies OR: what one grants, the
// token may do) except where one denies (deny wins everywhere), and a
// broader rule never adds capabilities to a more specific one: with
// path "transit/*" granting ["update"] and path "transit/keys/app"
// granting ["read"], update on transit/keys/app is denied, as in Vault.
// When the conditions of the most specific rule fail, a broader rule does
// not step in either: conditions on a rule restrict exactly the paths that
// rule names.
//
// Two points differ from Vault. In Vault a deny only wins when it is on
// the most specific pattern; here any matching deny wins, so that a
// "never decrypt" rule cannot be undone by a more specific grant in some
// other policy. And Vault has no conditions.
//
// # The root policy
//
// Root is the policy of the root token: it allows every request that no
// deny rule refuses. It is not written in the language, and Parse refuses
// the name "root".
//
// # Evaluating
//
// The caller builds a Request from what it has authenticated and
// decoded, and calls Evaluate with the token's policies:
//
//	d := acl.Evaluate(policies, acl.Request{
//		Path:       "transit/decrypt/app",                      // after /v1/
//		Capability: acl.CapabilityFor(r.Method, r.URL.RequestURI(), exists),
//		RemoteIP:   clientIP,
//		Time:       receivedAt,
//		Context:    decodedContext,                             // may be nil
//	})
//	if !d.Allowed {
//		// 403 "permission denied"; d.Reason goes to the audit event.
//	}
//
// A root-protected path needs sudo as well: evaluate a second Request with
// Capability "sudo". Evaluate is a pure function, with no clock and no
// I/O, so it is the same on every node for the same request; it refuses
// a path that is not clean (see Request.Path), an unknown capability, and
// everything when no policy grants. Policies are immutable once parsed
// and safe to share between goroutines.
//
// Decision.Reason says in one line which policy and rule decided and, when
// conditions failed, which and why (the client's address, the time); it
// never quotes the request's context values.
//
// # Mistakes
//
// Anything a policy says that keyraft does not understand is an error, so
// that a policy never grants more than it appears to. That includes an
// unknown block or argument, a misspelled capability, a condition test of
// the wrong type, and Vault features keyraft lacks (allowed_parameters,
// denied_parameters, required_parameters, min_wrapping_ttl,
// max_wrapping_ttl, control_group, mfa_methods, subscribe_event_types, the
// old policy = "write" syntax, JSON policies). Every error is a
// *ParseError: one line with the policy name, the position and the field,
// as in
//
//	ops:4,27: capabilities in path "transit/*": unknown capability "raed"; did you mean "read"?
//
// Other things refused: a "*" before the end of a pattern, a "+" inside a
// segment, "//", "." or ".." segments, a leading "/", "deny" with other
// capabilities, an empty capability list, a CIDR with bits set past its
// prefix length, an empty time window, a required_context key given
// twice. A capability listed twice counts once; a pattern given in two
// path blocks makes two rules, and with different conditions either may
// grant.
//
// Limits keep hostile input cheap: a policy has at most MaxPolicySize
// bytes and MaxRules path blocks, a pattern 512 bytes, a path block 16
// condition tests, a source_cidrs 256 networks, a required_context 32
// keys of 256 bytes each, and the source nests at most 32 brackets deep.
package acl
