package transport

import (
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"
)

// Path help comes from the table: the real vault client's Help (what
// `vault path-help` calls) gets the row's summary and access for any
// valid token, and a path the table does not serve is a 404.
func TestPathHelp(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cfg := vault.DefaultConfig()
	cfg.Address = h.srv.URL
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.putPolicy("nothing", `path "transit/keys/other" { capabilities = ["read"] }`)
	weak := h.newToken("nothing")
	c.SetToken(weak)
	help, err := c.Help("transit/encrypt/app")
	if err != nil {
		t.Fatal(err)
	}
	var row *route
	for _, r := range apiTable.rows {
		if r.pattern == "transit/encrypt/:name" {
			row = r
		}
	}
	if row == nil || !strings.Contains(help.Help, "transit/encrypt/:name") || !strings.Contains(help.Help, row.summary) {
		t.Errorf("help of transit/encrypt/app:\n%s", help.Help)
	}
	if ev := h.audit.last(); ev.Operation != helpOperation || ev.Status != 200 {
		t.Errorf("audit event %s %d, want %s 200", ev.Operation, ev.Status, helpOperation)
	}
	if _, err := c.Help("transit/nothing-here/x"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("help of an unknown path: %v, want a 404", err)
	}
	c.SetToken("not-a-token")
	if _, err := c.Help("transit/encrypt/app"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("help with an invalid token: %v, want a 403", err)
	}
	c.ClearToken()
	if help, err := c.Help("sys/seal-status"); err != nil || !strings.Contains(help.Help, "no token") {
		t.Errorf("help of a public path without a token: %v %v", help, err)
	}
}
