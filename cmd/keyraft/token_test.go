package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyraft/keyraft/api"
)

// TestIntegrationPolicyAndToken: policies and tokens from the CLI against
// a real dev server; an encrypt-only token made there cannot decrypt.
func TestIntegrationPolicyAndToken(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "app")
	src := []byte(`path "transit/encrypt/app" { capabilities = ["update"] }` + "\n")
	if out := s.ok(t, src, "policy", "write", "enc", "-"); !strings.Contains(string(out), "Uploaded policy: enc") {
		t.Fatalf("policy write: %q", out)
	}
	if out := s.ok(t, nil, "policy", "read", "enc"); string(out) != string(src) {
		t.Fatalf("policy read: %q", out)
	}
	if out := s.ok(t, nil, "policy", "list"); string(out) != "default\nenc\nroot\n" {
		t.Fatalf("policy list: %q", out)
	}
	// A mistake names the line and column, with a hint.
	_, errOut, code := s.kr(t, nil, []byte("path \"transit/*\" {\n  capabilities = [\"raed\"]\n}\n"), "policy", "write", "bad", "-")
	if code != 1 {
		t.Fatalf("bad policy: exit %d", code)
	}
	checkErrorLines(t, "bad policy", errOut, "bad:2,", "line and column")

	tok := strings.TrimSpace(string(s.ok(t, nil, "token", "create", "-policy=enc", "-ttl=1h", "-field=token")))
	if !strings.HasPrefix(tok, "kr.") {
		t.Fatalf("token create -field=token: %q", tok)
	}
	var look map[string]any
	if err := json.Unmarshal(s.ok(t, nil, "token", "lookup", "-format=json", tok), &look); err != nil {
		t.Fatal(err)
	}
	if look["ttl"].(float64) < 3500 || len(look["policies"].([]any)) != 2 {
		t.Fatalf("token lookup: %v", look)
	}
	as := map[string]string{"KEYRAFT_TOKEN": tok}
	ct, errOut, code := s.kr(t, as, []byte("secret"), "encrypt", "app")
	if code != 0 {
		t.Fatalf("encrypt with the encrypt-only token: %d %s", code, errOut)
	}
	// A valid token its policies do not allow: the hint names what is
	// missing, and does not send the user to change the token.
	_, errOut, code = s.kr(t, as, []byte(strings.TrimSpace(string(ct))), "decrypt", "app")
	if code != 1 {
		t.Fatalf("decrypt with the encrypt-only token: exit %d, %q", code, errOut)
	}
	checkErrorLines(t, "decrypt with the encrypt-only token", errOut, "permission denied: no policy grants update on transit/decrypt/app",
		"the token is valid, but none of its policies grants update on transit/decrypt/app")
	_, errOut, _ = s.kr(t, as, nil, "keys", "list")
	checkErrorLines(t, "keys list with the encrypt-only token", errOut, "permission denied", "the token is valid, but none of its policies grants list on transit/keys")
	s.ok(t, []byte(`path "transit/encrypt/app" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["deny"] }`+"\n"), "policy", "write", "enc", "-")
	_, errOut, _ = s.kr(t, as, []byte(strings.TrimSpace(string(ct))), "decrypt", "app")
	checkErrorLines(t, "decrypt refused by a deny rule", errOut, "denied by policy", `the token is valid, but policy "enc" rule "transit/decrypt/*" refuses update on transit/decrypt/app`)
	_, errOut, _ = s.kr(t, map[string]string{"KEYRAFT_TOKEN": ""}, nil, "keys", "list")
	checkErrorLines(t, "keys list without a token", errOut, "missing client token", "no token was sent: set KEYRAFT_TOKEN")
	s.ok(t, nil, "token", "renew", "-increment=30m", tok)
	s.ok(t, nil, "token", "revoke", tok)
	if _, _, code := s.kr(t, nil, nil, "token", "lookup", tok); code != 1 {
		t.Fatalf("lookup after revoke: exit %d", code)
	}
	s.ok(t, nil, "policy", "delete", "enc")
	if _, _, code := s.kr(t, nil, nil, "token", "revoke"); code != 2 {
		t.Fatalf("revoke without a token: exit %d", code)
	}
}

// TestIntegrationGrant: a just-in-time grant from the CLI: requested by an
// on-call token, approved by another identity, then used.
func TestIntegrationGrant(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "app")
	ct := strings.TrimSpace(string(s.ok(t, []byte("secret"), "encrypt", "app")))
	s.ok(t, []byte(`path "sys/grants" { capabilities = ["update", "read"] }`), "policy", "write", "oncall", "-")
	// An orphan: a token the root token made is the root token's identity.
	tok := strings.TrimSpace(string(s.ok(t, nil, "token", "create", "-orphan", "-policy=oncall", "-field=token")))
	as := map[string]string{"KEYRAFT_TOKEN": tok}
	out, errOut, code := s.kr(t, as, nil, "grant", "request", "-format=json", "-key=app", "-operation=decrypt", "-ttl=15m", "-reason=INC-7")
	if code != 0 {
		t.Fatalf("grant request: %d %s", code, errOut)
	}
	var g struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal(out, &g); err != nil || g.State != "pending" {
		t.Fatalf("grant request: %q %v", out, err)
	}
	if _, _, code := s.kr(t, as, []byte(ct), "decrypt", "app"); code != 1 {
		t.Fatalf("decrypt before approval: exit %d", code)
	}
	_, errOut, code = s.kr(t, as, nil, "grant", "approve", g.ID)
	if code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("self-approval: exit %d %q", code, errOut)
	}
	s.ok(t, nil, "grant", "approve", g.ID)
	if out, errOut, code := s.kr(t, as, []byte(ct), "decrypt", "app"); code != 0 || string(out) != "secret" {
		t.Fatalf("decrypt with the grant: exit %d %q %q", code, out, errOut)
	}
	if out := s.ok(t, nil, "grant", "list"); !strings.Contains(string(out), g.ID) || !strings.Contains(string(out), "active") {
		t.Fatalf("grant list: %q", out)
	}
	s.ok(t, nil, "grant", "revoke", g.ID)
	if _, _, code := s.kr(t, as, []byte(ct), "decrypt", "app"); code != 1 {
		t.Fatalf("decrypt after revoke: exit %d", code)
	}

	// The root token (made at init) requests; a token made from it may
	// approve by its policy but is the same identity, and is told so.
	out = s.ok(t, nil, "grant", "request", "-format=json", "-key=app", "-operation=decrypt", "-reason=INC-8")
	if err := json.Unmarshal(out, &g); err != nil {
		t.Fatal(err)
	}
	s.ok(t, []byte(`path "sys/grants/approve" { capabilities = ["update"] }`), "policy", "write", "approver", "-")
	child := strings.TrimSpace(string(s.ok(t, nil, "token", "create", "-policy=approver", "-field=token")))
	_, errOut, code = s.kr(t, map[string]string{"KEYRAFT_TOKEN": child}, nil, "grant", "approve", g.ID)
	if code != 1 || strings.Contains(errOut, "gone") {
		t.Fatalf("approval by the requester's child: exit %d %q", code, errOut)
	}
	checkErrorLines(t, "approval by the requester's child", errOut, "permission denied: the approving token is the requester's identity",
		"ask another operator to approve it, with a token of their own")
}

// TestIntegrationNamespace: -namespace (or KEYRAFT_NAMESPACE) scopes the
// CLI's keys, policies and tokens.
func TestIntegrationNamespace(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	c, err := api.New(api.Config{Address: s.addr, Token: s.token})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Do(context.Background(), "PUT", "sys/namespaces/prod", nil, nil); err != nil {
		t.Fatal(err)
	}
	s.ok(t, nil, "keys", "create", "-namespace=prod", "app")
	if out := s.ok(t, nil, "keys", "list", "-namespace=prod"); !strings.Contains(string(out), "app") {
		t.Fatalf("keys in prod: %q", out)
	}
	if _, _, code := s.kr(t, nil, nil, "keys", "read", "app"); code != 1 {
		t.Fatalf("prod's key seen from the root namespace: exit %d", code)
	}
	s.ok(t, []byte(`path "transit/encrypt/app" { capabilities = ["update"] }`), "policy", "write", "-namespace=prod", "enc", "-")
	env := map[string]string{"KEYRAFT_NAMESPACE": "prod"}
	out, errOut, code := s.kr(t, env, nil, "token", "create", "-policy=enc", "-field=token")
	if code != 0 {
		t.Fatalf("token create in prod: %d %s", code, errOut)
	}
	env["KEYRAFT_TOKEN"] = strings.TrimSpace(string(out))
	if _, errOut, code := s.kr(t, env, []byte("x"), "encrypt", "app"); code != 0 {
		t.Fatalf("encrypt in prod with prod's token: %d %s", code, errOut)
	}
	delete(env, "KEYRAFT_NAMESPACE")
	if _, _, code := s.kr(t, env, []byte("x"), "encrypt", "app"); code != 1 {
		t.Fatalf("prod's token outside prod: exit %d", code)
	}
}
