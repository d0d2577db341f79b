package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// baoCase is one command of the vault/bao CLI against keyraft: it must
// exit as want (0 or the CLI's 2 for a server error) with out in its
// output.
type baoCase struct {
	args []string
	fail bool   // the server refuses it (exit 2), as Vault does
	out  string // in the combined output ("" : anything)
}

// The commands of issue 15's list (what broke around transit), run with
// the unmodified bao CLI against a real keyraft process: each must work
// as against Vault/OpenBao. Skipped without a bao binary (KEYRAFT_BAO);
// TestVaultAPICommands makes the same calls with the vault Go client.
func TestBaoCommands(t *testing.T) {
	bao := baoBin(t)
	t.Parallel()
	c := startCluster(t, clusterOpts{size: 1})
	n := c.nodes[0]
	write(t, n.client(c.root), "transit/keys/app", map[string]any{})
	write(t, n.client(c.root), "transit/keys/ed", map[string]any{"type": "ed25519"})
	// A key in the node (the default backend here is a plugin, whose keys
	// cannot be exportable).
	write(t, n.client(c.root), "transit/keys/exp", map[string]any{"backend": "builtin"})
	batch := filepath.Join(t.TempDir(), "batch.json")
	if err := os.WriteFile(batch, []byte(`{"batch_input":[{"plaintext":"aGk="}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, tc := range []baoCase{
		{args: []string{"token", "create", "-policy=default"}, out: "token_policies"},
		{args: []string{"token", "create", "-policy=default", "-ttl=1h", "-explicit-max-ttl=2h", "-display-name=app"}, out: "1h"},
		{args: []string{"token", "create", "-period=1h", "-format=json"}, out: `"lease_duration": 3600`},
		{args: []string{"token", "create", "-orphan", "-use-limit=3", "-policy=default"}, out: "token"},
		{args: []string{"token", "lookup"}, out: "root"},
		{args: []string{"token", "capabilities", "transit/keys/app"}, out: "root"},
		{args: []string{"secrets", "list"}, out: "transit/"},
		{args: []string{"secrets", "list", "-detailed"}, out: "transit"},
		{args: []string{"secrets", "enable", "transit"}, fail: true, out: "path is already in use at transit/"},
		{args: []string{"secrets", "tune", "transit"}, out: "Success"},
		{args: []string{"auth", "list"}, out: "token/"},
		{args: []string{"auth", "list", "-detailed"}, out: "token/"},
		{args: []string{"auth", "tune", "token"}, out: "Success"},
		{args: []string{"operator", "members"}, out: n.addr},
		{args: []string{"operator", "key-status"}, out: "Key Term"},
		{args: []string{"path-help", "transit/keys/app"}, out: "transit/keys/:name"},
		{args: []string{"write", "transit/config/keys", "disable_upsert=true"}, out: "true"},
		{args: []string{"read", "transit/config/keys"}, out: "disable_upsert"},
		{args: []string{"write", "transit/encrypt/missing", "plaintext=aGk="}, fail: true, out: "encryption key not found"},
		{args: []string{"write", "transit/config/keys", "disable_upsert=false"}, out: "false"},
		{args: []string{"write", "transit/keys/exp/config", "exportable=true"}, out: "exportable"},
		{args: []string{"write", "-field=exportable", "transit/keys/exp/config", "exportable=false"}, out: "true"},
		{args: []string{"write", "transit/keys/app/trim", "min_available_version=1"}, fail: true, out: "min_encryption_version"},
		{args: []string{"write", "transit/sign/ed/sha2-256", "input=aGk=", "prehashed=true"}, out: "vault:v1:"},
		{args: []string{"write", "-format=json", "transit/encrypt/app", "@" + batch}, out: `"reference": ""`},
	} {
		out, err := runBao(ctx, bao, n, c.root, tc.args...)
		failed := err != nil
		if failed != tc.fail || !strings.Contains(out, tc.out) {
			t.Errorf("bao %s: error %v (want failure %v), output lacks %q:\n%s", strings.Join(tc.args, " "), err, tc.fail, tc.out, out)
		}
	}
	// token renew of a token made here (with and without an increment).
	out, err := runBao(ctx, bao, n, c.root, "token", "create", "-ttl=1h", "-policy=default", "-field=token")
	if err != nil {
		t.Fatalf("token create -field=token: %v %s", err, out)
	}
	tok := strings.TrimSpace(out)
	for _, args := range [][]string{{"token", "renew", tok}, {"token", "renew", "-increment=30m", tok}, {"token", "renew", tok}} {
		if out, err := runBao(ctx, bao, n, c.root, args...); err != nil || !strings.Contains(out, "token_duration") {
			t.Errorf("bao %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := runBao(ctx, bao, n, c.root, "token", "revoke", tok); err != nil {
		t.Fatalf("token revoke: %v %s", err, out)
	}
	if out, err := runBao(ctx, bao, n, c.root, "token", "lookup", tok); err == nil || !strings.Contains(out, "403") {
		t.Errorf("token lookup of a revoked token: %v, want a 403\n%s", err, out)
	}
}

// The calls the vault CLI commands of TestBaoCommands make, with the
// vault Go client, against a real keyraft process (this one runs in CI).
func TestVaultAPICommands(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOpts{size: 1})
	n := c.nodes[0]
	vc := n.client(c.root)
	write(t, vc, "transit/keys/app", map[string]any{})
	yes := true
	if sec, err := vc.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}, TTL: "0s",
		ExplicitMaxTTL: "0s", Period: "0s", Renewable: &yes}); err != nil || sec.Auth == nil {
		t.Errorf("token create with the CLI's zero durations: %v", err)
	}
	if sec, err := vc.Auth().Token().Create(&vault.TokenCreateRequest{Period: "1h"}); err != nil || sec.Auth.LeaseDuration != 3600 {
		t.Errorf("periodic token: %+v %v", sec, err)
	}
	if m, err := vc.Sys().ListMounts(); err != nil || m["transit/"] == nil || m["transit/"].Type != "transit" {
		t.Errorf("ListMounts: %v %v", m, err)
	}
	if m, err := vc.Sys().GetMount("transit"); err != nil || m.Type != "transit" {
		t.Errorf("GetMount: %v %v", m, err)
	}
	if a, err := vc.Sys().ListAuth(); err != nil || a["token/"] == nil {
		t.Errorf("ListAuth: %v %v", a, err)
	}
	if err := vc.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); !isStatus(err, 400) || !strings.Contains(err.Error(), "path is already in use at transit/") {
		t.Errorf("Mount(transit): %v", err)
	}
	if err := vc.Sys().TuneMount("transit", vault.MountConfigInput{}); err != nil {
		t.Errorf("TuneMount(transit): %v", err)
	}
	if ha, err := vc.Sys().HAStatus(); err != nil || len(ha.Nodes) != 1 || !ha.Nodes[0].ActiveNode {
		t.Errorf("HAStatus: %+v %v", ha, err)
	}
	if caps, err := vc.Sys().CapabilitiesSelf("transit/keys/app"); err != nil || len(caps) != 1 || caps[0] != "root" {
		t.Errorf("CapabilitiesSelf: %v %v", caps, err)
	}
	if sec, err := vc.Logical().Write("sys/capabilities-self", map[string]any{"paths": "transit/keys/app,sys/mounts"}); err != nil || sec.Data["sys/mounts"] == nil {
		t.Errorf("capabilities-self with a comma string: %v %v", sec, err)
	}
	if h, err := vc.Help("transit/keys/app"); err != nil || !strings.Contains(h.Help, "transit/keys/:name") {
		t.Errorf("Help: %v %v", h, err)
	}
	if ks, err := vc.Sys().KeyStatus(); err != nil || ks.Term < 1 {
		t.Errorf("KeyStatus: %+v %v", ks, err)
	}
	sec, err := vc.Logical().Write("transit/encrypt/app", map[string]any{"batch_input": []map[string]any{{"plaintext": "aGk="}}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sec.Data["batch_results"])
	if !strings.Contains(string(b), `"reference":""`) {
		t.Errorf("batch results without reference: %s", b)
	}
}
