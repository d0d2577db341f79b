package transport

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// fuzzPaths are the data operations FuzzAPIBody posts to, on keys that
// exist (so no input creates keys without bound).
var fuzzPaths = []string{
	"transit/encrypt/aes", "transit/decrypt/aes", "transit/rewrap/aes",
	"transit/encrypt/der", "transit/decrypt/der",
	"transit/datakey/plaintext/aes", "transit/datakey/wrapped/der",
	"transit/sign/ed", "transit/sign/ec/sha2-384", "transit/verify/ed", "transit/verify/ec",
	"transit/hmac/aes", "transit/hmac/hm/sha2-512", "transit/verify/hm",
	"transit/random", "transit/hash", "transit/keys/aes/config", "transit/keys/aes/trim",
}

// FuzzAPIBody posts arbitrary bodies through the real handler (token
// check, routing, engine, crypto, audit). Bad input must get a 4xx with
// Vault's error envelope: never a 5xx, which is also what a recovered
// panic would give.
func FuzzAPIBody(f *testing.F) {
	h := newHarness(f, harnessOpts{maxRequestSize: 1 << 20, discardAudit: true})
	h.createKey("aes", nil)
	h.createKey("der", map[string]any{"derived": true, "convergent_encryption": true})
	h.createKey("ed", map[string]any{"type": "ed25519"})
	h.createKey("ec", map[string]any{"type": "ecdsa-p384"})
	h.createKey("hm", map[string]any{"type": "hmac"})
	ct := h.must(200, "POST", "transit/encrypt/aes", map[string]any{"plaintext": b64("x")}).str("ciphertext")
	sig := h.must(200, "POST", "transit/sign/ed", map[string]any{"input": b64("x")}).str("signature")
	for _, seed := range []string{
		`{"plaintext":"aGk="}`,
		`{"ciphertext":"` + ct + `"}`,
		`{"input":"eA==","signature":"` + sig + `"}`,
		`{"plaintext":"aGk=","context":"Yw==","associated_data":"YQ=="}`,
		`{"batch_input":[{"plaintext":"aGk=","reference":"r"},{"ciphertext":"` + ct + `"}],"partial_failure_response_code":207}`,
		`{"input":"eA==","prehashed":"true","hash_algorithm":"sha2-256","marshaling_algorithm":"jws"}`,
		`{"min_decryption_version":"1","exportable":true,"auto_rotate_period":"30d"}`,
		`{"bits":"128","key_version":1}`, `{"bytes":64,"format":"hex"}`,
		`{"min_available_version":1}`, `[]`, `{`, `null`, ``,
	} {
		for i := range fuzzPaths {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, pathIdx uint8, body []byte) {
		path := fuzzPaths[int(pathIdx)%len(fuzzPaths)]
		req := httptest.NewRequest("POST", "/v1/"+path, bytes.NewReader(body))
		req.Header.Set("X-Vault-Token", rootToken)
		rec := httptest.NewRecorder()
		h.api.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: status %d %s", path, body, rec.Code, rec.Body.Bytes())
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("POST %s %q: status %d, body not JSON: %q", path, body, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			if _, ok := out["errors"]; !ok {
				if d, _ := out["data"].(map[string]any); d["batch_results"] == nil {
					t.Fatalf("POST %s: status %d without errors: %s", path, rec.Code, rec.Body.Bytes())
				}
			}
		}
	})
}

// membershipPaths are the cluster membership endpoints.
var membershipPaths = []string{
	"sys/storage/raft/bootstrap/challenge", "sys/storage/raft/bootstrap/answer",
	"sys/storage/raft/remove-peer", "sys/storage/raft/join",
}

// FuzzMembershipBody posts arbitrary bodies to the membership endpoints of
// a one-node cluster: every answer is a 4xx or 2xx with a JSON body, the
// node keeps its single voter, and nothing panics or hangs.
func FuzzMembershipBody(f *testing.F) {
	h := newHarness(f, harnessOpts{discardAudit: true})
	for _, seed := range []string{
		`{"server_id":"n2"}`, `{"server_id":"n1"}`, `{"server_id":""}`, `{"server_id":"bad id"}`,
		`{"server_id":"n2","cluster_addr":"127.0.0.1:1","answer":"AAAA","csr":"AAAA"}`,
		`{"server_id":"n2","cluster_addr":"nope","answer":"","csr":""}`,
		`{"leader_api_addr":"http://127.0.0.1:1"}`, `{"leader_api_addr":"ftp://x"}`,
		`{"server_id":"n2","extra":1}`, `[]`, `{`, `null`, ``,
	} {
		for i := range membershipPaths {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, pathIdx uint8, body []byte) {
		path := membershipPaths[int(pathIdx)%len(membershipPaths)]
		req := httptest.NewRequest("POST", "/v1/"+path, bytes.NewReader(body))
		req.Header.Set("X-Vault-Token", rootToken)
		rec := httptest.NewRecorder()
		h.api.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: status %d %s", path, body, rec.Code, rec.Body.Bytes())
		}
		if rec.Code != 204 {
			var out map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("POST %s %q: status %d, body not JSON: %q", path, body, rec.Code, rec.Body.Bytes())
			}
		}
		if peers, err := h.node.Peers(); err != nil || len(peers) != 1 {
			t.Fatalf("POST %s %q changed the configuration: %+v %v", path, body, peers, err)
		}
	})
}
