package transport

import (
	"errors"
	"slices"
	"testing"

	vault "github.com/hashicorp/vault/api"
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
