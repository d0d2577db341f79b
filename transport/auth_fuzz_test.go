package transport

import (
	"testing"

	"github.com/keyraft/keyraft/cluster"
)

// FuzzCertRoleBody: the cert role decoder never panics; what it returns
// is checked by Validate, which never panics either.
func FuzzCertRoleBody(f *testing.F) {
	for _, s := range []string{
		`{"certificate":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n","token_policies":["a"],"token_ttl":"1h"}`,
		`{"policies":"a,b","allowed_common_names":"*.x","ttl":60}`, `{"allowed_dns_sans":[1]}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, bad := parseCertRole("role", body)
		if bad != "" {
			return
		}
		if err := r.Validate(); err == nil && (len(r.Policies) == 0 || r.TTL < 0 || r.TTL > cluster.MaxTokenTTL) {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzRequestContexts: decoding a transit body's context for policy
// conditions never panics and gives one context per batch item.
func FuzzRequestContexts(f *testing.F) {
	for _, s := range []string{
		`{"associated_data":"eyJ0ZW5hbnQiOiJhY21lIn0="}`, `{"context":"eyJhIjoiYiJ9","batch_input":[{"context":"e30="},{}]}`,
		`{"context":5}`, `{"batch_input":"x"}`, `[]`, ``, `{"context":"!!"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ctxs, bad := requestContexts(body)
		if bad == "" && len(ctxs) == 0 {
			t.Fatal("no context for an accepted body")
		}
		for _, c := range ctxs {
			if len(c) > 2*maxContextPairs {
				t.Fatalf("context of %d pairs", len(c))
			}
		}
	})
}
