package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/transit"
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
		if err := r.Validate(); err == nil && (len(r.Policies) == 0 || r.TTL < 0 || r.TTL > access.MaxTokenTTL) {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzConditionSeesEngineContext: for any body, the context and
// associated data a policy condition checks are the ones the engine
// uses. The engine encrypts the body's items under a derived key (the
// context picks the key) with their associated data; each ciphertext must
// then decrypt with the context and associated data the condition read
// for its item. A body the condition reads differently from the engine
// (a decoy "Context" beside "context", a duplicate key, a case variant of
// batch_input) fails this, or is refused before either reads it.
func FuzzConditionSeesEngineContext(f *testing.F) {
	ctx := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		`{"plaintext":"eA==","context":"` + ctx(`{"tenant":"evil"}`) + `","Context":"` + ctx(`{"tenant":"acme"}`) + `"}`,
		`{"plaintext":"eA==","context":"` + ctx(`{"tenant":"evil"}`) + `","context":"` + ctx(`{"tenant":"acme"}`) + `"}`,
		`{"batch_input":[{"plaintext":"eA==","context":"` + ctx(`{"a":"b"}`) + `"}],"BATCH_INPUT":[{"plaintext":"eA==","context":"` + ctx(`{"tenant":"acme"}`) + `"}]}`,
		`{"batch_input":[{"plaintext":"eA==","context":"` + ctx(`{"a":"b"}`) + `","CONTEXT":"` + ctx(`{"tenant":"acme"}`) + `"}]}`,
		`{"plaintext":"eA==","context":"` + ctx(`{"tenant":"acme"}`) + `","associated_data":"` + ctx(`{"x":"y"}`) + `"}`,
		`{"batch_input":[{"plaintext":"eA==","context":"eDE="},{"plaintext":"eQ==","context":"eDI=","associated_data":"YQ=="}]}`,
		`{"plaintext":"eA==","conteXt":"eDE=","context":"eDI="}`, `{"plaintext":"eA==","Context":"eDE="}`,
		`{"context":5}`, `{"batch_input":"x"}`, `[]`, ``, `{"context":"!!"}`,
	} {
		f.Add([]byte(s))
	}
	h := newHarness(f, harnessOpts{})
	h.createKey("derived", map[string]any{"derived": true})
	e := h.engine
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := transit.ParseFields(body)
		if err != nil {
			return // refused before anyone reads it
		}
		seen, err := requestContexts(in, "encrypt")
		if err != nil {
			return
		}
		raw, err := conditionInputs(in, "encrypt")
		if err != nil {
			t.Fatalf("requestContexts accepted what conditionInputs refuses: %v", err)
		}
		if len(seen) != len(raw) || len(seen) == 0 {
			t.Fatalf("%d contexts for %d items", len(seen), len(raw))
		}
		res, err := e.Encrypt(context.Background(), "derived", in)
		if err != nil || res.Status >= 400 {
			return // the engine refused the body (e.g. no plaintext): nothing was used
		}
		cts := []string{}
		if br, ok := res.Data["batch_results"].([]map[string]any); ok {
			for _, r := range br {
				c, _ := r["ciphertext"].(string)
				cts = append(cts, c)
			}
		} else {
			cts = append(cts, res.Data["ciphertext"].(string))
		}
		if len(cts) != len(raw) {
			t.Fatalf("%d ciphertexts for %d items the condition saw", len(cts), len(raw))
		}
		for i, ct := range cts {
			if ct == "" {
				continue // this item failed on its own
			}
			dec := map[string]any{"ciphertext": ct}
			if raw[i][0] != nil {
				dec["context"] = base64.StdEncoding.EncodeToString(raw[i][0])
			}
			if raw[i][1] != nil {
				dec["associated_data"] = base64.StdEncoding.EncodeToString(raw[i][1])
			}
			b, _ := json.Marshal(dec)
			df, _ := transit.ParseFields(b)
			if _, err := e.Decrypt(context.Background(), "derived", df); err != nil {
				t.Fatalf("item %d: the engine used another context than the condition saw: %v", i, err)
			}
		}
	})
}
