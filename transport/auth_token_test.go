package transport

import (
	"context"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/keyraft/keyraft/transit"
)

func authOf(t *testing.T, r resp) map[string]any {
	t.Helper()
	a, _ := r.body["auth"].(map[string]any)
	if a == nil {
		t.Fatalf("no auth block: %d %s", r.status, r.raw)
	}
	return a
}

func TestTokenCreateAndPolicies(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.putPolicy("creator", `path "auth/token/create" { capabilities = ["update"] }
path "auth/token/create-orphan" { capabilities = ["update"] }
path "transit/keys/*" { capabilities = ["read"] }`)
	h.putPolicy("other", `path "transit/*" { capabilities = ["update"] }`)

	r := h.must(200, "POST", "auth/token/create", map[string]any{
		"policies": []string{"creator"}, "ttl": "1h", "display_name": "ci", "meta": map[string]string{"team": "pay"}})
	a := authOf(t, r)
	creator, _ := a["client_token"].(string)
	if !strings.HasPrefix(creator, "kr.") || a["accessor"] == "" || num(a, "lease_duration") != 3600 || a["renewable"] != true || a["orphan"] != false {
		t.Fatalf("auth block: %s", r.raw)
	}
	if pol := a["policies"].([]any); len(pol) != 2 || pol[0] != "default" || pol[1] != "creator" {
		t.Fatalf("policies: %v", pol)
	}
	// No escalation: a creator may hand out only what it holds.
	if r := h.as(creator, "POST", "auth/token/create", map[string]any{"policies": []string{"other"}}); r.status != 403 {
		t.Fatalf("escalation: %d %s", r.status, r.raw)
	}
	if r := h.as(creator, "POST", "auth/token/create", map[string]any{"policies": []string{"root"}}); r.status != 403 {
		t.Fatalf("root from a non-root token: %d %s", r.status, r.raw)
	}
	if r := h.as(creator, "POST", "auth/token/create", map[string]any{"no_parent": true}); r.status != 403 {
		t.Fatalf("no_parent without sudo: %d %s", r.status, r.raw)
	}
	child := authOf(t, h.as(creator, "POST", "auth/token/create", map[string]any{"policies": "creator", "ttl": "2h"}))
	// A child never outlives its parent.
	if d := num(child, "lease_duration"); d > 3600 || d < 3590 {
		t.Fatalf("child ttl %d, want capped at the parent's 3600", d)
	}
	orphan := authOf(t, h.as(creator, "POST", "auth/token/create-orphan", map[string]any{"policies": []string{"creator"}}))
	if orphan["orphan"] != true {
		t.Fatalf("create-orphan: %v", orphan)
	}
	// Lookups.
	look := h.must(200, "POST", "auth/token/lookup", map[string]any{"token": creator})
	if look.str("display_name") != "token-ci" || look.str("id") != creator || look.data()["meta"].(map[string]any)["team"] != "pay" {
		t.Fatalf("lookup: %s", look.raw)
	}
	byAcc := h.must(200, "POST", "auth/token/lookup-accessor", map[string]any{"accessor": a["accessor"]})
	if byAcc.str("id") != "" || byAcc.str("accessor") != a["accessor"] {
		t.Fatalf("lookup-accessor: %s", byAcc.raw)
	}
	if r := h.as(creator, "POST", "auth/token/lookup", map[string]any{"token": h.token}); r.status != 403 {
		t.Fatalf("lookup of another token without a policy: %d", r.status)
	}
	// Revoking the parent revokes the child, not the orphan.
	h.must(204, "POST", "auth/token/revoke", map[string]any{"token": creator})
	for _, tok := range []any{creator, child["client_token"]} {
		if r := h.as(tok.(string), "GET", "auth/token/lookup-self", nil); r.status != 403 {
			t.Fatalf("revoked token still works: %d", r.status)
		}
	}
	if r := h.as(orphan["client_token"].(string), "GET", "auth/token/lookup-self", nil); r.status != 200 {
		t.Fatalf("orphan revoked with its creator: %d", r.status)
	}
	if r := h.do("POST", "auth/token/lookup-accessor", map[string]any{"accessor": a["accessor"]}); r.status != 400 {
		t.Fatalf("accessor index kept after revoke: %d", r.status)
	}
	// Bad bodies are 400s that name the field.
	for body, want := range map[string]string{
		`{"ttl":"forever"}`:               "ttl",
		`{"num_uses":-1}`:                 "num_uses",
		`{"policies":[1]}`:                "policies",
		`{"bound_cidrs":["10.0.0.0/99"]}`: "bound_cidrs",
		`{"meta":{"a":1}}`:                "meta",
		`{"id":"custom"}`:                 "id",
		`{"ttl":"10000h"}`:                "ttl",
		`[]`:                              "JSON",
	} {
		if r := h.do("POST", "auth/token/create", body); r.status != 400 || !strings.Contains(r.errs()[0], want) {
			t.Errorf("%s: %d %s", body, r.status, r.raw)
		}
	}
}

func TestTokenRevokeOrphanAndAccessor(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.putPolicy("maker", `path "auth/token/create" { capabilities = ["update"] }`)
	parent := authOf(t, h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"maker"}}))
	ptok := parent["client_token"].(string)
	kid := authOf(t, h.as(ptok, "POST", "auth/token/create", nil))
	grandkid := authOf(t, h.as(kid["client_token"].(string), "POST", "auth/token/create", nil))
	// revoke-orphan needs sudo: the parent itself may not.
	if r := h.as(ptok, "POST", "auth/token/revoke-orphan", map[string]any{"token": ptok}); r.status != 403 {
		t.Fatalf("revoke-orphan without sudo: %d", r.status)
	}
	h.must(204, "POST", "auth/token/revoke-orphan", map[string]any{"token": ptok})
	if r := h.as(kid["client_token"].(string), "GET", "auth/token/lookup-self", nil); r.status != 200 || r.data()["orphan"] != true {
		t.Fatalf("child after revoke-orphan: %d %s", r.status, r.raw)
	}
	// revoke-accessor takes the subtree.
	h.must(204, "POST", "auth/token/revoke-accessor", map[string]any{"accessor": kid["accessor"]})
	if r := h.as(grandkid["client_token"].(string), "GET", "auth/token/lookup-self", nil); r.status != 403 {
		t.Fatalf("grandchild survived: %d", r.status)
	}
	// revoke-self.
	self := authOf(t, h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"maker"}}))["client_token"].(string)
	if r := h.as(self, "POST", "auth/token/revoke-self", nil); r.status != 204 {
		t.Fatalf("revoke-self: %d %s", r.status, r.raw)
	}
	if r := h.as(self, "GET", "auth/token/lookup-self", nil); r.status != 403 {
		t.Fatalf("after revoke-self: %d", r.status)
	}
}

// TestTokenTTL: expiry is judged by the node's clock at request time (an
// injected clock here, no sleeping); renewals extend up to the explicit
// max; the tidy pass deletes expired tokens through Raft.
func TestTokenTTL(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	now := time.Now().UTC()
	h.api.SetClock(func() time.Time { return now })
	h.putPolicy("maker", `path "auth/token/create" { capabilities = ["update"] }`)
	a := authOf(t, h.must(200, "POST", "auth/token/create", map[string]any{
		"policies": []string{"maker"}, "ttl": "10m", "explicit_max_ttl": "30m"}))
	tok := a["client_token"].(string)
	kid := authOf(t, h.as(tok, "POST", "auth/token/create", nil))
	_ = kid
	if r := h.as(tok, "GET", "auth/token/lookup-self", nil); r.status != 200 || num(r.data(), "ttl") != 600 {
		t.Fatalf("fresh: %d %s", r.status, r.raw)
	}
	now = now.Add(9 * time.Minute)
	r := h.as(tok, "POST", "auth/token/renew-self", map[string]any{"increment": "1h"})
	if ra := authOf(t, r); num(ra, "lease_duration") != 21*60 { // capped at creation + 30m
		t.Fatalf("renew capped: %s", r.raw)
	}
	now = now.Add(20*time.Minute + 59*time.Second)
	if r := h.as(tok, "GET", "auth/token/lookup-self", nil); r.status != 200 {
		t.Fatalf("just before expiry: %d", r.status)
	}
	now = now.Add(time.Second)
	r = h.as(tok, "GET", "auth/token/lookup-self", nil)
	if r.status != 403 || !strings.Contains(r.errs()[0], "expired") {
		t.Fatalf("at expiry: %d %s", r.status, r.raw)
	}
	if ev := h.audit.last(); ev.Outcome != "denied" {
		t.Fatalf("expired use recorded as %q", ev.Outcome)
	}
	// The tidy pass removes it (and its child) from the state.
	n, err := h.node.Access().TidyTokens(context.Background(), now)
	if err != nil || n < 1 {
		t.Fatalf("tidy: %d %v", n, err)
	}
	if _, err := h.node.Access().LookupToken(tok); err == nil {
		t.Fatal("expired token still stored after tidy")
	}
	if _, err := h.node.Access().LookupAccessor(kid["accessor"].(string)); err == nil {
		t.Fatal("child of an expired token still stored after tidy")
	}
	// The root token (no TTL) survives every tidy; tidy also indexes its accessor.
	if _, err := h.node.Access().TidyTokens(context.Background(), now.Add(1000*time.Hour)); err != nil {
		t.Fatal(err)
	}
	self := h.must(200, "GET", "auth/token/lookup-self", nil)
	h.must(200, "POST", "auth/token/lookup-accessor", map[string]any{"accessor": self.str("accessor")})
}

// TestTokenNumUses: each use is spent through Raft before the answer; the
// last one deletes the token.
func TestTokenNumUses(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", nil)
	h.putPolicy("enc", `path "transit/encrypt/app" { capabilities = ["update"] }`)
	tok := authOf(t, h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"enc"}, "num_uses": 2}))["client_token"].(string)
	for i := range 2 {
		if r := h.as(tok, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")}); r.status != 200 {
			t.Fatalf("use %d: %d %s", i+1, r.status, r.raw)
		}
	}
	if r := h.as(tok, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")}); r.status != 403 {
		t.Fatalf("third use: %d %s", r.status, r.raw)
	}
	if _, err := h.node.Access().LookupToken(tok); err == nil {
		t.Fatal("used-up token still stored")
	}
	// A denied request spends no use.
	tok = authOf(t, h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"enc"}, "num_uses": 1}))["client_token"].(string)
	h.as(tok, "POST", "transit/decrypt/app", map[string]any{"ciphertext": "vault:v1:AAAA"})
	if e, err := h.node.Access().LookupToken(tok); err != nil || e.NumUses != 1 {
		t.Fatalf("denied request spent a use: %+v %v", e, err)
	}
}

func TestTokenBoundCIDRs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	far := authOf(t, h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"default"}, "bound_cidrs": []string{"10.0.0.0/8"}}))
	near := authOf(t, h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"default"}, "token_bound_cidrs": "127.0.0.1/32,::1"}))
	if r := h.as(far["client_token"].(string), "GET", "auth/token/lookup-self", nil); r.status != 403 || !strings.Contains(r.errs()[0], "bound_cidrs") {
		t.Fatalf("from outside bound_cidrs: %d %s", r.status, r.raw)
	}
	if r := h.as(near["client_token"].(string), "GET", "auth/token/lookup-self", nil); r.status != 200 {
		t.Fatalf("from inside bound_cidrs: %d %s", r.status, r.raw)
	}
}

// TestVaultClientTokens: the real vault Go client creates, looks up,
// renews and revokes tokens.
func TestVaultClientTokens(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := vaultClient(t, h.srv.URL, h.token)
	h.putPolicy("app", `path "transit/encrypt/app" { capabilities = ["update"] }`)
	renew := true
	sec, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"app"}, TTL: "1h", DisplayName: "app", NumUses: 5, Renewable: &renew})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Auth == nil || sec.Auth.ClientToken == "" || sec.Auth.LeaseDuration != 3600 || !sec.Auth.Renewable {
		t.Fatalf("create: %+v", sec.Auth)
	}
	look, err := c.Auth().Token().Lookup(sec.Auth.ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	if pols, _ := look.TokenPolicies(); len(pols) != 2 || pols[1] != "app" {
		t.Fatalf("lookup policies: %v", pols)
	}
	if acc, _ := look.TokenAccessor(); acc != sec.Auth.Accessor {
		t.Fatalf("accessor %q, want %q", acc, sec.Auth.Accessor)
	}
	if _, err := c.Auth().Token().LookupAccessor(sec.Auth.Accessor); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().Renew(sec.Auth.ClientToken, 600); err != nil {
		t.Fatal(err)
	}
	orphan, err := c.Auth().Token().CreateOrphan(&vault.TokenCreateRequest{Policies: []string{"app"}})
	if err != nil || !orphan.Auth.Orphan {
		t.Fatalf("create-orphan: %v %+v", err, orphan)
	}
	if err := c.Auth().Token().RevokeTree(sec.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth().Token().RevokeAccessor(orphan.Auth.Accessor); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().Lookup(sec.Auth.ClientToken); err == nil {
		t.Fatal("revoked token still looks up")
	}
	self, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := self.TokenID(); id != h.token {
		t.Fatalf("lookup-self id %q", id)
	}
}

// FuzzTokenCreateBody: the token create decoder never panics, and what it
// accepts is within its limits.
func FuzzTokenCreateBody(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"policies":["a","b"],"ttl":"1h","num_uses":3}`, `{"policies":"a,b","bound_cidrs":"10.0.0.0/8"}`,
		`{"meta":{"k":"v"},"renewable":"false","no_parent":true}`, `{"ttl":3600,"explicit_max_ttl":"2h"}`,
		`{"display_name":"x","type":"service","id":"","period":"","entity_alias":""}`, `null`, `[`, `{"lease":"5m"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		f, err := transit.ParseFields(body)
		if err != nil {
			return
		}
		tc, err := parseTokenCreate(f)
		if err != nil {
			return
		}
		if tc.NumUses < 0 || tc.TTL < 0 || len(tc.Policies) > maxTokenPolicies || len(tc.BoundCIDRs) > maxTokenCIDRs || len(tc.Meta) > maxTokenMeta {
			t.Fatalf("accepted out of limits: %+v", tc)
		}
	})
}
