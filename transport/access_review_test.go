package transport

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/cluster"
)

// Tests of the access-control review's findings, each on a real node
// over HTTP: each failed before its fix.

// inNS sends a request with tok in namespace ns.
func (h *harness) inNS(ns, tok, method, path string, body any) resp {
	h.t.Helper()
	return h.doWith(method, path, body, map[string]string{"X-Vault-Token": tok, "X-Vault-Namespace": ns})
}

// newOrphan makes an orphan token with policies, as root: a separate
// identity for the two-person rule.
func (h *harness) newOrphan(policies ...string) string {
	h.t.Helper()
	r := h.must(200, "POST", "auth/token/create-orphan", map[string]any{"policies": policies})
	tok, _ := r.body["auth"].(map[string]any)["client_token"].(string)
	if tok == "" {
		h.t.Fatalf("create-orphan: no client_token in %s", r.raw)
	}
	return tok
}

// breakGlass runs the ceremony with the harness's unseal key and returns
// the emergency token.
func (h *harness) breakGlass() string {
	h.t.Helper()
	start := h.doWith("POST", "sys/break-glass/attempt", map[string]any{"duration": "30m"}, nil)
	if start.status != 200 {
		h.t.Fatalf("break-glass attempt: %d %s", start.status, start.raw)
	}
	r := h.doWith("POST", "sys/break-glass/update", map[string]any{"nonce": start.body["nonce"], "key": hex.EncodeToString(h.unsealKey)}, nil)
	if r.status != 200 || r.body["complete"] != true {
		h.t.Fatalf("break-glass update: %d %s", r.status, r.raw)
	}
	tok, err := cluster.DecodeRootToken(r.body["encoded_token"].(string), start.body["otp"].(string))
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// TestSudoCannotMintRoot: sudo on auth/token/* does not let a non-root
// token create a root token (child or orphan); in a namespace, sudo does
// not widen the policies a creator hands out and no token gets root; a
// break-glass token with sudo on auth/token/* mints neither root nor
// orphans that outlive its session.
func TestSudoCannotMintRoot(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	admin := `path "auth/token/*" { capabilities = ["create", "update", "sudo"] }`
	h.putPolicy("tokenadmin", admin)
	h.putPolicy("other", `path "transit/*" { capabilities = ["update"] }`)
	ta := h.newToken("tokenadmin")
	for _, path := range []string{"auth/token/create", "auth/token/create-orphan"} {
		r := h.as(ta, "POST", path, map[string]any{"policies": []string{"root"}})
		if r.status != 403 || !strings.Contains(r.errs()[0], "only a root token") {
			t.Fatalf("%s root by a sudo token: %d %s", path, r.status, r.raw)
		}
	}
	// Sudo in the root namespace still hands out other policies (Vault's rule).
	if r := h.as(ta, "POST", "auth/token/create", map[string]any{"policies": []string{"other"}}); r.status != 200 {
		t.Fatalf("sudo creating a token with another policy: %d %s", r.status, r.raw)
	}

	// A namespace admin.
	h.must(200, "PUT", "sys/namespaces/prod", nil)
	for name, src := range map[string]string{"nsadmin": admin, "payments": `path "transit/*" { capabilities = ["update"] }`} {
		if r := h.inNS("prod", h.token, "PUT", "sys/policies/acl/"+name, map[string]any{"policy": src}); r.status != 204 {
			t.Fatalf("policy %s in prod: %d %s", name, r.status, r.raw)
		}
	}
	nsAdmin := authOf(t, h.inNS("prod", h.token, "POST", "auth/token/create", map[string]any{"policies": []string{"nsadmin"}}))["client_token"].(string)
	for _, path := range []string{"auth/token/create", "auth/token/create-orphan"} {
		if r := h.inNS("prod", nsAdmin, "POST", path, map[string]any{"policies": []string{"root"}}); r.status != 403 {
			t.Fatalf("%s root by a namespace admin: %d %s", path, r.status, r.raw)
		}
		if r := h.inNS("prod", nsAdmin, "POST", path, map[string]any{"policies": []string{"payments"}}); r.status != 403 {
			t.Fatalf("%s with a policy the namespace admin does not hold: %d %s", path, r.status, r.raw)
		}
	}
	if r := h.inNS("prod", nsAdmin, "POST", "auth/token/create", map[string]any{"policies": []string{"nsadmin"}}); r.status != 200 {
		t.Fatalf("namespace admin handing out its own policy: %d %s", r.status, r.raw)
	}
	// Not even the root token makes a namespace's root token (it would act
	// in every namespace).
	if r := h.inNS("prod", h.token, "POST", "auth/token/create", map[string]any{"policies": []string{"root"}}); r.status != 400 {
		t.Fatalf("root token of a namespace: %d %s", r.status, r.raw)
	}

	// Break-glass with sudo on auth/token/*.
	h.putPolicy("emergency", admin)
	h.must(204, "PUT", "sys/break-glass/config", map[string]any{"policy": "emergency"})
	bg := h.breakGlass()
	for _, path := range []string{"auth/token/create", "auth/token/create-orphan"} {
		if r := h.as(bg, "POST", path, map[string]any{"policies": []string{"root"}}); r.status != 403 {
			t.Fatalf("%s root by a break-glass token: %d %s", path, r.status, r.raw)
		}
	}
	if r := h.as(bg, "POST", "auth/token/create-orphan", map[string]any{"policies": []string{"emergency"}}); r.status != 403 {
		t.Fatalf("orphan from a break-glass token: %d %s", r.status, r.raw)
	}
	if r := h.as(bg, "POST", "auth/token/create", map[string]any{"policies": []string{"emergency"}, "no_parent": true}); r.status != 403 {
		t.Fatalf("no_parent from a break-glass token: %d %s", r.status, r.raw)
	}
	child := authOf(t, h.as(bg, "POST", "auth/token/create", map[string]any{"policies": []string{"emergency"}}))
	if d := num(child, "lease_duration"); d > 1800 {
		t.Fatalf("break-glass child outlives the session: %ds", d)
	}
}

// TestUseLimitedTokenCreatesNoTokens: a token with num_uses cannot make
// a child or an orphan (which would have unlimited uses of the same
// policies), as in Vault; the refusal is a 400 that says why.
func TestUseLimitedTokenCreatesNoTokens(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.putPolicy("creator", `path "auth/token/*" { capabilities = ["create", "update", "sudo"] }`)
	limited := authOf(t, h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"creator"}, "num_uses": 5}))["client_token"].(string)
	for _, path := range []string{"auth/token/create", "auth/token/create-orphan"} {
		r := h.as(limited, "POST", path, map[string]any{"policies": []string{"creator"}})
		if r.status != 400 || !strings.Contains(r.errs()[0], "use-limited") {
			t.Fatalf("%s from a use-limited token: %d %s", path, r.status, r.raw)
		}
	}
	if r := h.as(limited, "GET", "auth/token/lookup-self", nil); r.status != 200 {
		t.Fatalf("the use-limited token itself: %d %s", r.status, r.raw)
	}
}

// TestGrantDoesNotOverrideDenyOrCondition: an active grant lifts only
// the absence of a capability; it never overrides a deny rule or a
// condition (here source_cidrs and required_context) that fails.
func TestGrantDoesNotOverrideDenyOrCondition(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, k := range []string{"app", "denied", "cidr", "ctx"} {
		h.createKey(k, nil)
	}
	h.putPolicy("approver", `path "sys/grants/approve" { capabilities = ["update"] }`)
	h.putPolicy("oncall", `
path "sys/grants" { capabilities = ["update"] }
path "transit/decrypt/denied" { capabilities = ["deny"] }
path "transit/decrypt/cidr" {
  capabilities = ["update"]
  condition { source_cidrs = ["10.0.0.0/8"] }
}
path "transit/decrypt/ctx" {
  capabilities = ["update"]
  condition { required_context = { tenant = "acme" } }
}`)
	req, appr := h.newOrphan("oncall"), h.newOrphan("approver")
	for _, k := range []string{"app", "denied", "cidr", "ctx"} {
		id := h.as(req, "POST", "sys/grants", map[string]any{"key": k, "operation": "decrypt", "reason": "INC-7"}).str("id")
		if r := h.as(appr, "POST", "sys/grants/approve", map[string]any{"id": id}); r.status != 200 {
			t.Fatalf("approve %s: %d %s", k, r.status, r.raw)
		}
	}
	decrypt := func(key string) resp {
		ct := h.must(200, "POST", "transit/encrypt/"+key, map[string]any{"plaintext": b64("x")}).str("ciphertext")
		return h.as(req, "POST", "transit/decrypt/"+key, map[string]any{"ciphertext": ct})
	}
	// No rule for app: the grant fills the gap.
	if r := decrypt("app"); r.status != 200 {
		t.Fatalf("grant on a key without a rule: %d %s", r.status, r.raw)
	}
	for key, why := range map[string]string{"denied": "denied by", "cidr": "conditions", "ctx": "conditions"} {
		r := decrypt(key)
		if r.status != 403 || !strings.Contains(r.errs()[0], why) {
			t.Errorf("grant overrode the policy on %s: %d %s", key, r.status, r.raw)
		}
		if ev := h.audit.last(); ev.Details["grant"] != "" {
			t.Errorf("%s: refused request recorded as a grant use: %+v", key, ev.Details)
		}
	}
}

// TestRestoreRefusesReservedNameFromBackup: in the root namespace a
// restore without a name takes the backup's name; a backup naming
// "ns.prod.pay" (namespace prod's key pay) is refused like that name in
// a path, so a token with only transit/restore cannot replace another
// namespace's key. Restores under an ordinary name still work.
func TestRestoreRefusesReservedNameFromBackup(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.must(200, "PUT", "sys/namespaces/prod", nil)
	if r := h.inNS("prod", h.token, "POST", "transit/keys/pay", nil); r.status != 200 {
		t.Fatalf("prod key: %d %s", r.status, r.raw)
	}
	ct := h.inNS("prod", h.token, "POST", "transit/encrypt/pay", map[string]any{"plaintext": b64("prod data")}).str("ciphertext")
	h.createKey("evil", map[string]any{"exportable": true, "allow_plaintext_backup": true})
	// The restore with force below replaces the key: it must allow deletion.
	h.must(200, "POST", "transit/keys/evil/config", map[string]any{"deletion_allowed": true})
	backup := h.must(200, "GET", "transit/backup/evil", nil).str("backup")
	raw, err := base64.StdEncoding.DecodeString(backup)
	if err != nil {
		t.Fatal(err)
	}
	var bf map[string]any
	if err := json.Unmarshal(raw, &bf); err != nil {
		t.Fatal(err)
	}
	bf["policy"].(map[string]any)["name"] = "ns.prod.pay"
	forged, _ := json.Marshal(bf)
	h.putPolicy("restorer", `path "transit/restore" { capabilities = ["update"] }
path "transit/restore/*" { capabilities = ["update"] }`)
	tok := h.newToken("restorer")
	r := h.as(tok, "POST", "transit/restore", map[string]any{"backup": base64.StdEncoding.EncodeToString(forged), "force": true})
	if r.status != 400 || !strings.Contains(r.errs()[0], "reserved for namespaces") {
		t.Fatalf("restore of a backup named ns.prod.pay: %d %s", r.status, r.raw)
	}
	if r := h.inNS("prod", h.token, "POST", "transit/decrypt/pay", map[string]any{"ciphertext": ct}); r.status != 200 || r.str("plaintext") != b64("prod data") {
		t.Fatalf("prod's key after the refused restore: %d %s", r.status, r.raw)
	}
	// The same backup under a name of the caller's choosing, and the
	// original under its own name, restore as before.
	h.as(tok, "POST", "transit/restore/copy", map[string]any{"backup": base64.StdEncoding.EncodeToString(forged)})
	if r := h.do("GET", "transit/keys/copy", nil); r.status != 200 {
		t.Fatalf("restore under a given name: %d %s", r.status, r.raw)
	}
	if r := h.as(tok, "POST", "transit/restore", map[string]any{"backup": backup, "force": true}); r.status != 204 {
		t.Fatalf("restore under the backup's own name: %d %s", r.status, r.raw)
	}
	if r := h.as(tok, "POST", "transit/restore", map[string]any{"backup": b64("not a backup")}); r.status != 400 {
		t.Fatalf("restore of garbage: %d %s", r.status, r.raw)
	}
	// A grant's key is a key-name input too.
	if r := h.do("POST", "sys/grants", map[string]any{"key": "ns.prod.pay", "operation": "decrypt", "reason": "x"}); r.status != 400 || !strings.Contains(r.errs()[0], "reserved") {
		t.Fatalf("grant on a reserved key name: %d %s", r.status, r.raw)
	}
}

// TestTwoPersonRuleComparesIdentities: the approver must be another
// identity, not just another token: a parent approving its child's
// request, a sibling made by the same creator, an orphan the requester
// made and a second login with the same client certificate are all the
// requester; an approver whose
// chain of parents cannot be followed (deeper than 64) is refused; a
// separate orphan and a different certificate may approve.
func TestTwoPersonRuleComparesIdentities(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", nil)
	h.putPolicy("both", `path "sys/grants" { capabilities = ["update"] }
path "sys/grants/approve" { capabilities = ["update"] }
path "auth/token/create" { capabilities = ["update"] }
path "auth/token/create-orphan" { capabilities = ["update"] }`)
	request := func(tok string) string {
		t.Helper()
		r := h.as(tok, "POST", "sys/grants", map[string]any{"key": "app", "operation": "decrypt", "reason": "INC-1"})
		if r.status != 200 {
			t.Fatalf("request: %d %s", r.status, r.raw)
		}
		return r.str("id")
	}
	approve := func(tok, id string) resp {
		t.Helper()
		return h.as(tok, "POST", "sys/grants/approve", map[string]any{"id": id})
	}
	child := func(parent string) string {
		t.Helper()
		return authOf(t, h.as(parent, "POST", "auth/token/create", map[string]any{"policies": []string{"both"}}))["client_token"].(string)
	}
	refused := func(what string, r resp) {
		t.Helper()
		if r.status != 403 || !strings.Contains(r.errs()[0], "another identity") {
			t.Errorf("%s: %d %s", what, r.status, r.raw)
		}
	}

	parent := h.newOrphan("both")
	kid := child(parent)
	refused("parent approving its child's request", approve(parent, request(kid)))
	a, b := child(parent), child(parent)
	refused("sibling approving a sibling's request", approve(b, request(a)))
	refused("root token's children approving each other", approve(h.newToken("both"), request(h.newToken("both"))))
	// An orphan a (non-root) requester makes is still the requester.
	own := authOf(t, h.as(kid, "POST", "auth/token/create-orphan", map[string]any{"policies": []string{"both"}}))["client_token"].(string)
	refused("an orphan the requester made", approve(own, request(kid)))

	// A chain deeper than the walk's bound cannot be resolved: refused.
	deep := h.newOrphan("both")
	for i := 0; i < 65; i++ {
		deep = child(deep)
	}
	other := h.newOrphan("both")
	refused("approver whose chain cannot be resolved", approve(deep, request(other)))

	// Two logins with one certificate are one person.
	ca := newTestCA(t, "people CA")
	h.must(204, "PUT", "auth/cert/certs/people", map[string]any{
		"certificate": ca.pem, "allowed_common_names": "*.people.example", "token_policies": []string{"both"}, "token_ttl": "1h"})
	srv := httptest.NewUnstartedServer(h.api)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	login := func(cert tls.Certificate) string {
		t.Helper()
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
		res, err := (&http.Client{Transport: tr}).Post(srv.URL+"/v1/auth/cert/login", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Auth struct {
				ClientToken string `json:"client_token"`
			} `json:"auth"`
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 200 {
			t.Fatalf("cert login: %d %v", res.StatusCode, err)
		}
		return body.Auth.ClientToken
	}
	alice, bob := ca.client(t, "alice.people.example"), ca.client(t, "bob.people.example")
	a1, a2 := login(alice), login(alice)
	refused("second login with the same certificate", approve(a2, request(a1)))
	if r := approve(login(bob), request(a1)); r.status != 200 {
		t.Fatalf("approval by another certificate: %d %s", r.status, r.raw)
	}
	if r := approve(h.newOrphan("both"), request(kid)); r.status != 200 {
		t.Fatalf("approval by a separate orphan: %d %s", r.status, r.raw)
	}
}

// TestBreakGlassOneSessionAtATime: while a break-glass session is on, a
// second activation is refused (at the attempt, and at the last share
// when an attempt was started meanwhile) instead of overwriting the
// session record and leaving the first token valid but untracked; once
// the session is over, a new one can start.
func TestBreakGlassOneSessionAtATime(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	now := time.Now().UTC()
	h.api.SetClock(func() time.Time { return now })
	h.putPolicy("emergency", `path "transit/decrypt/*" { capabilities = ["update"] }`)
	h.must(204, "PUT", "sys/break-glass/config", map[string]any{"policy": "emergency"})
	first := h.breakGlass()
	firstAcc := h.as(first, "GET", "auth/token/lookup-self", nil).str("accessor")
	r := h.doWith("POST", "sys/break-glass/attempt", map[string]any{"duration": "30m"}, nil)
	if r.status != 400 || !strings.Contains(r.errs()[0], "already active") {
		t.Fatalf("second attempt while a session is on: %d %s", r.status, r.raw)
	}
	// An attempt that reaches its last share while a session is on.
	nonce, _, _, err := h.node.BreakGlassInit(30 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, enc, _, err := h.node.BreakGlassUpdate(context.Background(), nonce, h.unsealKey, now); !errors.Is(err, access.ErrBreakGlassActive) || enc != "" {
		t.Fatalf("second activation at the last share: %q %v", enc, err)
	}
	if s, err := h.node.Access().BreakGlassSession(now); err != nil || s == nil || s.Accessor != firstAcc {
		t.Fatalf("session record after the refused activation: %+v %v (first accessor %s)", s, err, firstAcc)
	}
	// After the session's end a new one starts.
	now = now.Add(31 * time.Minute)
	second := h.breakGlass()
	if second == first {
		t.Fatal("the same token twice")
	}
	if s, err := h.node.Access().BreakGlassSession(now); err != nil || s == nil || s.Accessor == firstAcc {
		t.Fatalf("new session: %+v %v", s, err)
	}
}

// TestNamespaceRootTokenStaysHome: a root-policy token that belongs to a
// namespace (which the API no longer makes, but a store may hold) acts
// only in that namespace, never in the root namespace or another one.
func TestNamespaceRootTokenStaysHome(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, ns := range []string{"prod", "dev"} {
		h.must(200, "PUT", "sys/namespaces/"+ns, nil)
	}
	tok, _, err := h.node.Access().CreateToken(context.Background(), access.TokenRequest{
		Policies: []string{"root"}, Namespace: "prod", TTL: time.Hour, Path: "auth/token/create", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if r := h.inNS("prod", tok, "POST", "transit/keys/k", nil); r.status != 200 {
		t.Fatalf("in its own namespace: %d %s", r.status, r.raw)
	}
	for _, ns := range []string{"", "dev"} {
		if r := h.inNS(ns, tok, "POST", "transit/keys/k", nil); r.status != 403 {
			t.Errorf("namespace %q: %d %s", ns, r.status, r.raw)
		}
	}
	if r := h.as(tok, "PUT", "sys/namespaces/evil", nil); r.status != 403 {
		t.Errorf("operator path in the root namespace: %d %s", r.status, r.raw)
	}
}

// TestDecoyFieldsRefused: a body cannot show a policy condition one value
// and the engine another. A case variant of a field beside it, a
// duplicate key, or a case variant of batch_input (at the top or inside
// an item) is a 400 before either reads the body; a lone case variant is
// refused by the getter that asks for the field. Before one decode, the
// condition matched "Context" case-insensitively while the engine read
// "context", and decrypted another tenant's data.
func TestDecoyFieldsRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("shared", map[string]any{"derived": true})
	h.putPolicy("acme", `
path "transit/encrypt/shared" { capabilities = ["update"] }
path "transit/decrypt/shared" {
  capabilities = ["update"]
  condition { required_context = { tenant = "acme" } }
}
`)
	acme := h.newToken("acme")
	ctxOf := func(tenant string) string {
		return base64.StdEncoding.EncodeToString([]byte(`{"tenant":"` + tenant + `"}`))
	}
	evilCT := h.must(200, "POST", "transit/encrypt/shared", map[string]any{"plaintext": b64("evil's secret"), "context": ctxOf("evil")}).str("ciphertext")
	for _, c := range []struct {
		name, body, want string
	}{
		{"Context beside context", `{"ciphertext":"` + evilCT + `","context":"` + ctxOf("evil") + `","Context":"` + ctxOf("acme") + `"}`, "differ only in case"},
		{"Context before context", `{"Context":"` + ctxOf("acme") + `","ciphertext":"` + evilCT + `","context":"` + ctxOf("evil") + `"}`, "differ only in case"},
		{"duplicate context", `{"ciphertext":"` + evilCT + `","context":"` + ctxOf("acme") + `","context":"` + ctxOf("evil") + `"}`, "duplicate field"},
		{"BATCH_INPUT beside batch_input", `{"batch_input":[{"ciphertext":"` + evilCT + `","context":"` + ctxOf("evil") + `"}],"BATCH_INPUT":[{"ciphertext":"` + evilCT + `","context":"` + ctxOf("acme") + `"}]}`, "differ only in case"},
		{"CONTEXT inside an item", `{"batch_input":[{"ciphertext":"` + evilCT + `","context":"` + ctxOf("evil") + `","CONTEXT":"` + ctxOf("acme") + `"}]}`, "batch_input[0]"},
		{"duplicate inside an item", `{"batch_input":[{"ciphertext":"` + evilCT + `","context":"` + ctxOf("acme") + `","context":"` + ctxOf("evil") + `"}]}`, "duplicate field"},
		{"lone Context", `{"ciphertext":"` + evilCT + `","Context":"` + ctxOf("acme") + `"}`, "case-sensitive"},
		{"lone Batch_Input", `{"Batch_Input":[{"ciphertext":"` + evilCT + `","context":"` + ctxOf("acme") + `"}]}`, "case-sensitive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.with(t).as(acme, "POST", "transit/decrypt/shared", c.body)
			if r.status != 400 || !strings.Contains(strings.Join(r.errs(), " "), c.want) {
				t.Fatalf("status %d, want 400 with %q: %s", r.status, c.want, r.raw)
			}
		})
	}
	// The real context of acme still passes, and evil's does not.
	acmeCT := h.must(200, "POST", "transit/encrypt/shared", map[string]any{"plaintext": b64("acme's"), "context": ctxOf("acme")}).str("ciphertext")
	if r := h.as(acme, "POST", "transit/decrypt/shared", map[string]any{"ciphertext": acmeCT, "context": ctxOf("acme")}); r.status != 200 {
		t.Fatalf("acme's own decrypt: %d %s", r.status, r.raw)
	}
	if r := h.as(acme, "POST", "transit/decrypt/shared", map[string]any{"ciphertext": evilCT, "context": ctxOf("evil")}); r.status != 403 {
		t.Fatalf("evil's context: %d, want 403", r.status)
	}
}

// TestDenyCoversEveryPathOfAnAction: a deny on a key's path refuses the
// same action under the paths that carry its algorithm, and a deny on one
// name of a policy refuses the other name (issue 12 item 9: with
// transit/sign/* allowed and transit/sign/signer denied,
// transit/sign/signer/sha2-256 signed; sys/policy/enc rewrote a policy
// that sys/policies/acl/enc denied).
func TestDenyCoversEveryPathOfAnAction(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("signer", map[string]any{"type": "ed25519"})
	h.createKey("other", map[string]any{"type": "ed25519"})
	h.createKey("mac", nil)
	h.putPolicy("enc", `path "transit/encrypt/*" { capabilities = ["update"] }`)
	h.putPolicy("narrow", `
path "transit/sign/*" { capabilities = ["update"] }
path "transit/sign/signer" { capabilities = ["deny"] }
path "transit/hmac/*" { capabilities = ["update"] }
path "transit/hmac/mac" { capabilities = ["deny"] }
path "sys/policy/*" { capabilities = ["create", "update", "read"] }
path "sys/policies/acl/enc" { capabilities = ["deny"] }
path "sys/policies/acl/*" { capabilities = ["create", "update", "read"] }
`)
	tok := h.newToken("narrow")
	in := map[string]any{"input": b64("release-1.0")}
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", "transit/sign/signer", in, 403},
		{"POST", "transit/sign/signer/sha2-256", in, 403},
		{"POST", "transit/sign/signer/sha2-512", in, 403},
		{"POST", "transit/sign/other/sha2-256", in, 200},
		{"POST", "transit/hmac/mac", in, 403},
		{"POST", "transit/hmac/mac/sha2-256", in, 403},
		{"PUT", "sys/policies/acl/enc", map[string]any{"policy": `path "x" { capabilities = ["read"] }`}, 403},
		{"PUT", "sys/policy/enc", map[string]any{"policy": `path "x" { capabilities = ["read"] }`}, 403},
		{"PUT", "sys/policy/other", map[string]any{"policy": `path "x" { capabilities = ["read"] }`}, 204},
	} {
		if r := h.as(tok, c.method, c.path, c.body); r.status != c.want {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, r.status, c.want, r.raw)
		}
	}
	if got := h.must(200, "GET", "sys/policies/acl/enc", nil).str("policy"); !strings.Contains(got, "transit/encrypt") {
		t.Fatalf("policy enc was rewritten: %q", got)
	}
}

// TestConditionReadsWhatTheOperationUses: a condition checks only the
// fields the operation's engine reads, where it reads them. Sign uses the
// context to pick a derived key and ignores associated_data, so an
// associated_data of the required tenant beside another tenant's context
// must not pass; datakey takes no batch, so a batch_input beside its own
// context must not pass either; and context and associated_data that
// disagree on a key are a 400 (review findings).
func TestConditionReadsWhatTheOperationUses(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("signer", map[string]any{"type": "ed25519", "derived": true})
	h.createKey("dk", map[string]any{"derived": true})
	h.putPolicy("acme", `
path "transit/sign/signer" {
  capabilities = ["update"]
  condition { required_context = { tenant = "acme" } }
}
path "transit/datakey/plaintext/dk" {
  capabilities = ["update"]
  condition { required_context = { tenant = "acme" } }
}
path "transit/encrypt/dk" {
  capabilities = ["update"]
  condition { required_context = { tenant = "acme" } }
}
`)
	acme := h.newToken("acme")
	ctxOf := func(tenant string) string {
		return base64.StdEncoding.EncodeToString([]byte(`{"tenant":"` + tenant + `"}`))
	}
	for _, c := range []struct {
		name, path string
		body       map[string]any
		want       int
	}{
		{"sign: own context", "transit/sign/signer", map[string]any{"input": b64("x"), "context": ctxOf("acme")}, 200},
		{"sign: evil context, acme associated_data", "transit/sign/signer", map[string]any{"input": b64("x"), "context": ctxOf("evil"), "associated_data": ctxOf("acme")}, 403},
		{"datakey: own context", "transit/datakey/plaintext/dk", map[string]any{"context": ctxOf("acme")}, 200},
		{"datakey: evil context, acme batch", "transit/datakey/plaintext/dk", map[string]any{"context": ctxOf("evil"), "batch_input": []any{map[string]any{"context": ctxOf("acme")}}}, 403},
		{"encrypt: context and associated_data disagree", "transit/encrypt/dk", map[string]any{"plaintext": b64("x"), "context": ctxOf("evil"), "associated_data": ctxOf("acme")}, 400},
		{"encrypt: both acme", "transit/encrypt/dk", map[string]any{"plaintext": b64("x"), "context": ctxOf("acme"), "associated_data": ctxOf("acme")}, 200},
	} {
		if r := h.as(acme, "POST", c.path, c.body); r.status != c.want {
			t.Errorf("%s: %d, want %d: %s", c.name, r.status, c.want, r.raw)
		}
	}
}
