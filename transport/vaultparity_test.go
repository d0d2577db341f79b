package transport

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/keyraft/keyraft/access"
)

// vaultClient is the real vault Go client on h, with token.
func (h *harness) vaultClient(token string) *vault.Client {
	h.t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = h.srv.URL
	c, err := vault.NewClient(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// sys/capabilities, -self and -accessor as the vault client (and CLI)
// call them: paths as a list or as one comma-separated string.
func TestVaultCapabilities(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.putPolicy("app", `path "transit/encrypt/app" { capabilities = ["update"] }`)
	h.putPolicy("asker", `path "sys/capabilities" { capabilities = ["update"] }
path "sys/capabilities-accessor" { capabilities = ["update"] }`)
	app := h.newToken("app")
	asker := h.vaultClient(h.newToken("asker"))
	want := []string{"update"}

	caps, err := h.vaultClient(app).Sys().CapabilitiesSelf("transit/encrypt/app")
	if err != nil || !slices.Equal(caps, want) {
		t.Errorf("capabilities-self: %v %v", caps, err)
	}
	caps, err = asker.Sys().Capabilities(app, "transit/encrypt/app")
	if err != nil || !slices.Equal(caps, want) {
		t.Errorf("capabilities by token: %v %v", caps, err)
	}
	look, err := h.vaultClient(app).Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := look.TokenAccessor()
	caps, err = asker.Sys().CapabilitiesAccessor(acc, "transit/encrypt/app")
	if err != nil || !slices.Equal(caps, want) {
		t.Errorf("capabilities by accessor: %v %v", caps, err)
	}
	sec, err := h.vaultClient(app).Logical().Write("sys/capabilities-self", map[string]any{"paths": "transit/encrypt/app,transit/decrypt/app"})
	if err != nil {
		t.Fatalf("paths as a comma-separated string: %v", err)
	}
	if got := sec.Data["transit/decrypt/app"]; len(got.([]any)) != 1 || got.([]any)[0] != "deny" {
		t.Errorf("transit/decrypt/app: %v, want [deny]", got)
	}
	// Asking about another token needs a policy on sys/capabilities (the
	// client asks capabilities-self when the token is its own).
	if _, err := h.vaultClient(app).Sys().Capabilities(h.newToken("asker"), "transit/encrypt/app"); statusOf(err) != 403 {
		t.Errorf("capabilities without a policy for it: %v, want 403", err)
	}
	if _, err := asker.Sys().Capabilities("no-such-token", "transit/encrypt/app"); statusOf(err) != 400 {
		t.Errorf("capabilities of an unknown token: %v, want 400", err)
	}
}

// statusOf is the HTTP status of a vault client error (0: none).
func statusOf(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// sys/key-status has Vault's fields, encryptions included; a lookup of a
// revoked token is Vault's 403.
func TestVaultKeyStatusAndRevokedLookup(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.vaultClient(h.token)
	before, err := c.Sys().KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	h.createKey("app", nil) // a write under the barrier
	after, err := c.Sys().KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	if after.Term != 1 || after.InstallTime.IsZero() || after.Encryptions <= before.Encryptions {
		t.Errorf("key-status before %+v, after a write %+v: want term 1 and more encryptions", before, after)
	}
	tok := h.newToken("default")
	if err := c.Auth().Token().RevokeTree(tok); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().Lookup(tok); statusOf(err) != 403 {
		t.Errorf("lookup of a revoked token: %v, want 403", err)
	}
}

// sys/mounts, sys/auth and sys/ha-status through the real vault client:
// keyraft's fixed mounts in Vault's shapes, and the refusals Vault gives.
func TestVaultMountsAndAuth(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.vaultClient(h.token)
	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	tr := mounts["transit/"]
	if tr == nil || tr.Type != "transit" || !strings.HasPrefix(tr.Accessor, "transit_") || mounts["sys/"] == nil {
		t.Fatalf("ListMounts: %+v", mounts)
	}
	for _, p := range []string{"transit", "transit/keys/app"} {
		m, err := c.Sys().GetMount(p)
		if err != nil || m.Type != "transit" || m.Accessor != tr.Accessor || m.UUID != tr.UUID {
			t.Errorf("GetMount(%s): %+v %v", p, m, err)
		}
	}
	if _, err := c.Sys().GetMount("kv"); statusOf(err) != 400 {
		t.Errorf("GetMount(kv): %v, want 400", err)
	}
	err = c.Sys().Mount("transit", &vault.MountInput{Type: "transit"})
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "path is already in use at transit/") {
		t.Errorf("enable transit: %v", err)
	}
	if err := c.Sys().Mount("kv", &vault.MountInput{Type: "kv"}); statusOf(err) != 400 || !strings.Contains(err.Error(), "fixed") {
		t.Errorf("enable kv: %v", err)
	}
	if err := c.Sys().TuneMount("transit", vault.MountConfigInput{}); err != nil {
		t.Errorf("tune transit with nothing to change: %v", err)
	}
	if err := c.Sys().TuneMount("transit", vault.MountConfigInput{DefaultLeaseTTL: "1h"}); statusOf(err) != 400 ||
		!strings.Contains(err.Error(), "default_lease_ttl") {
		t.Errorf("tune transit's lease TTL: %v, want a 400 naming default_lease_ttl", err)
	}
	cfg, err := c.Sys().MountConfig("transit")
	if err != nil || cfg.MaxLeaseTTL == 0 {
		t.Errorf("MountConfig(transit): %+v %v", cfg, err)
	}
	if err := c.Sys().Unmount("nothing-here"); err != nil {
		t.Errorf("disable a path with no mount: %v, want Vault's 204", err)
	}
	if err := c.Sys().Unmount("transit"); statusOf(err) != 400 {
		t.Errorf("disable transit: %v, want 400", err)
	}

	auths, err := c.Sys().ListAuth()
	if err != nil || auths["token/"] == nil || auths["token/"].Type != "token" || auths["cert/"] == nil {
		t.Fatalf("ListAuth: %+v %v", auths, err)
	}
	if a, err := c.Sys().GetAuth("token"); err != nil || a.Accessor != auths["token/"].Accessor {
		t.Errorf("GetAuth(token): %+v %v", a, err)
	}
	if err := c.Sys().EnableAuth("token", "token", ""); statusOf(err) != 400 || !strings.Contains(err.Error(), "path is already in use at token/") {
		t.Errorf("enable token auth: %v", err)
	}

	ha, err := c.Sys().HAStatus()
	if err != nil || len(ha.Nodes) != 1 || !ha.Nodes[0].ActiveNode || ha.Nodes[0].Hostname != "n1" {
		t.Errorf("HAStatus: %+v %v", ha, err)
	}
}

// transit/config/keys: with disable_upsert, encrypt under a missing key is
// Vault's 400 and creates nothing; {} turns upsert back on, as in Vault.
func TestVaultConfigKeysDisableUpsert(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.vaultClient(h.token)
	pt := map[string]any{"plaintext": "aGk="}
	if _, err := c.Logical().Write("transit/encrypt/before", pt); err != nil {
		t.Fatal(err)
	}
	sec, err := c.Logical().Write("transit/config/keys", map[string]any{"disable_upsert": true})
	if err != nil || sec.Data["disable_upsert"] != true {
		t.Fatalf("config/keys write: %v %v", sec, err)
	}
	if sec, err := c.Logical().Read("transit/config/keys"); err != nil || sec.Data["disable_upsert"] != true {
		t.Fatalf("config/keys read: %v %v", sec, err)
	}
	_, err = c.Logical().Write("transit/encrypt/missing", pt)
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "encryption key not found") {
		t.Errorf("encrypt under a missing key with upsert disabled: %v", err)
	}
	if sec, _ := c.Logical().Read("transit/keys/missing"); sec != nil {
		t.Errorf("the refused encrypt created the key: %v", sec.Data)
	}
	if _, err := c.Logical().Write("transit/encrypt/before", pt); err != nil {
		t.Errorf("encrypt under an existing key: %v", err)
	}
	if _, err := c.Logical().Write("transit/config/keys", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("transit/encrypt/missing", pt); err != nil {
		t.Errorf("encrypt after {} turned upsert back on: %v", err)
	}
}

// Token create as the vault CLI sends it ("0s" for every unset
// duration), periodic tokens, and Vault's renewal arithmetic: an
// increment is the new TTL from now, none re-grants the last one, a
// periodic token always gets its period.
func TestVaultTokenPeriodAndRenew(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	now := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	h.api.SetClock(func() time.Time { return now })
	c := h.vaultClient(h.token)
	h.putPolicy("app", `path "transit/encrypt/app" { capabilities = ["update"] }`)
	h.putPolicy("maker", `path "auth/token/create" { capabilities = ["update"] }`)
	yes := true
	cliBody := map[string]any{"ttl": "0s", "explicit_max_ttl": "0s", "period": "0s", "display_name": "", "num_uses": 0,
		"renewable": true, "type": "service", "entity_alias": "", "policies": []string{"app"}}
	sec, err := c.Logical().Write("auth/token/create", cliBody)
	if err != nil || sec.Auth == nil || sec.Auth.LeaseDuration != int(access.DefaultTokenTTL.Seconds()) {
		t.Fatalf("token create as the CLI sends it: %+v %v", sec, err)
	}

	sec, err = c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"app"}, Period: "1h", TTL: "1m", Renewable: &yes})
	if err != nil || sec.Auth.LeaseDuration != 3600 {
		t.Fatalf("periodic token: %+v %v", sec, err)
	}
	periodic := sec.Auth.ClientToken
	look, err := c.Auth().Token().Lookup(periodic)
	if err != nil || look.Data["period"] != json.Number("3600") {
		t.Fatalf("lookup of a periodic token: %v %v", look, err)
	}
	now = now.Add(50 * time.Minute)
	sec, err = c.Auth().Token().Renew(periodic, 7200)
	if err != nil || sec.Auth == nil || sec.Auth.LeaseDuration != 3600 {
		t.Fatalf("renew of a periodic token: %+v %v; want its period", sec, err)
	}
	// The creator needs sudo (a token that may create tokens, without sudo).
	maker := h.vaultClient(h.newToken("maker"))
	if _, err := maker.Auth().Token().Create(&vault.TokenCreateRequest{Period: "1h"}); statusOf(err) != 400 ||
		!strings.Contains(err.Error(), "root or sudo privileges required to create periodic token") {
		t.Errorf("periodic token without sudo: %v", err)
	}

	sec, err = c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"app"}, TTL: "1h", Renewable: &yes})
	if err != nil {
		t.Fatal(err)
	}
	tok := sec.Auth.ClientToken
	for i, step := range []struct{ increment, want int }{{7200, 7200}, {0, 7200}, {1800, 1800}, {0, 1800}} {
		sec, err := c.Auth().Token().Renew(tok, step.increment)
		if err != nil || sec.Auth.LeaseDuration != step.want {
			t.Errorf("renew %d (increment %d): %+v %v; want %d", i, step.increment, sec, err, step.want)
		}
	}
	look, err = c.Auth().Token().Lookup(tok)
	if err != nil || look.Data["last_renewal_time"] == nil || look.Data["creation_ttl"] != json.Number("3600") {
		t.Errorf("lookup after renewals: %v %v", look, err)
	}
}

// Ed25519 through sign/:name/:hash_algorithm with prehashed: accepted and
// signed as pure Ed25519, as Vault does, with a warning about prehashed
// and none about the hash algorithm.
func TestVaultEd25519SignOptions(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("ed", map[string]any{"type": "ed25519"})
	in := map[string]any{"input": b64("message")}
	plain := h.must(200, "POST", "transit/sign/ed", in)
	r := h.must(200, "POST", "transit/sign/ed/sha2-256", in)
	if r.str("signature") != plain.str("signature") || len(r.warnings()) != 0 {
		t.Errorf("sign/ed/sha2-256: %s, warnings %v; want the same signature, no warning", r.str("signature"), r.warnings())
	}
	r = h.must(200, "POST", "transit/sign/ed", map[string]any{"input": b64("message"), "prehashed": true})
	if r.str("signature") != plain.str("signature") || len(r.warnings()) != 1 || !strings.Contains(r.warnings()[0], "prehashed has no effect") {
		t.Errorf("sign prehashed: %s, warnings %v", r.str("signature"), r.warnings())
	}
	v := h.must(200, "POST", "transit/verify/ed/sha2-512", map[string]any{"input": b64("message"), "signature": plain.str("signature"), "prehashed": true})
	if v.data()["valid"] != true {
		t.Errorf("verify: %v", v.data())
	}
}

// A ciphertext a crypto-backend plugin cannot open is Vault's "invalid
// ciphertext" 400, as for a key in the node; the backend is named after.
func TestPluginInvalidCiphertext(t *testing.T) {
	h := newHarness(t, harnessOpts{plugins: true})
	h.createKey("k", nil)
	for _, ct := range []string{"vault:v1:YWJj", "garbage"} {
		r := h.do("POST", "transit/decrypt/k", map[string]any{"ciphertext": ct})
		if r.status != 400 || len(r.errs()) != 1 || !strings.HasPrefix(r.errs()[0], "invalid ciphertext: ") {
			t.Errorf("decrypt %q: %d %v; want a 400 starting with 'invalid ciphertext: '", ct, r.status, r.errs())
		}
	}
}

// An ACL denial on a key names the key in its event, so that
// `keyraft audit query -key=K -outcome=denied` finds it (in a namespace
// as the engine stores it).
func TestDeniedEventNamesTheKey(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", nil)
	tok := h.newToken("default")
	if r := h.as(tok, "POST", "transit/decrypt/app", map[string]any{"ciphertext": "vault:v1:AAAA"}); r.status != 403 {
		t.Fatalf("decrypt without a policy: %d", r.status)
	}
	if ev := h.audit.last(); ev.Outcome != "denied" || ev.Key != "app" {
		t.Errorf("denied event: outcome %q key %q; want denied, app", ev.Outcome, ev.Key)
	}
	if r := h.do("POST", "transit/decrypt/app", map[string]any{}); r.status != 400 {
		t.Fatalf("decrypt without a ciphertext: %d", r.status)
	}
	if ev := h.audit.last(); ev.Key != "app" {
		t.Errorf("error event key %q, want app", ev.Key)
	}
}

// `vault auth tune token` tunes through sys/mounts/auth/token/tune.
func TestVaultAuthTune(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.vaultClient(h.token)
	if err := c.Sys().TuneMount("auth/token", vault.MountConfigInput{}); err != nil {
		t.Errorf("tune auth/token with nothing to change: %v", err)
	}
	cfg, err := c.Sys().MountConfig("auth/token")
	if err != nil || cfg.DefaultLeaseTTL != int(access.DefaultTokenTTL.Seconds()) || cfg.TokenType != "default-service" {
		t.Errorf("MountConfig(auth/token): %+v %v", cfg, err)
	}
}

// The review's edge cases: help spends a use of a use-limited token; a
// trimmed key's min_encryption_version stays at or above the trim;
// ed25519 refuses hash_algorithm none; a periodic token may have an
// explicit max beyond the system's; a periodic token without one is a
// hygiene finding.
func TestVaultEdgeCases(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	sec := h.must(200, "POST", "auth/token/create", map[string]any{"policies": []string{"default"}, "num_uses": 1})
	oneUse := tokenFromRaw(t, sec.raw)
	if r := h.as(oneUse, "GET", "transit/keys/x?help=1", nil); r.status != 200 {
		t.Fatalf("help with a one-use token: %d", r.status)
	}
	if r := h.as(oneUse, "GET", "transit/keys/x?help=1", nil); r.status != 403 {
		t.Errorf("help again with the spent token: %d, want 403", r.status)
	}

	h.createKey("k", nil)
	h.must(200, "POST", "transit/keys/k/rotate", nil)
	h.must(200, "POST", "transit/keys/k/config", map[string]any{"min_decryption_version": 2, "min_encryption_version": 2})
	h.must(200, "POST", "transit/keys/k/trim", map[string]any{"min_available_version": 2})
	if r := h.do("POST", "transit/keys/k/config", map[string]any{"min_encryption_version": 0}); r.status != 400 {
		t.Errorf("min_encryption_version 0 on a trimmed key: %d %s", r.status, r.raw)
	}

	h.createKey("ed", map[string]any{"type": "ed25519"})
	if r := h.do("POST", "transit/sign/ed", map[string]any{"input": b64("x"), "hash_algorithm": "none"}); r.status != 400 {
		t.Errorf("ed25519 with hash_algorithm none: %d", r.status)
	}

	r := h.do("POST", "auth/token/create", map[string]any{"period": "24h", "explicit_max_ttl": "8760h"})
	if r.status != 200 {
		t.Errorf("periodic token with an explicit max of a year: %d %s", r.status, r.raw)
	}
	h.must(200, "POST", "auth/token/create", map[string]any{"period": "1h", "display_name": "forever", "policies": []string{"default"}})
	found := false
	for _, f := range h.hygiene(h.token) {
		found = found || f.Check == "token-no-ttl" && strings.Contains(f.Message, "periodic")
	}
	if !found {
		t.Error("a periodic token without an explicit max is no hygiene finding")
	}
}

// tokenFromRaw is the client token of a token-create answer.
func tokenFromRaw(t *testing.T, raw []byte) string {
	t.Helper()
	var out struct {
		Auth struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Auth.ClientToken == "" {
		t.Fatalf("no client token in %s", raw)
	}
	return out.Auth.ClientToken
}
