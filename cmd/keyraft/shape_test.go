package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRequestShapes checks only what each command sends: method, path and
// body, with flags turned into the API's fields and stdin base64-encoded.
// What the server answers is for the integration tests against the real
// server; the recorder gives the minimum each command needs to go on.
func TestRequestShapes(t *testing.T) {
	type request struct {
		method, path, token string
		body                map[string]any
	}
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := request{method: r.Method, path: r.URL.EscapedPath(), token: r.Header.Get("X-Vault-Token")}
		if r.URL.RawQuery != "" {
			req.path += "?" + r.URL.RawQuery
		}
		data, _ := io.ReadAll(r.Body)
		if len(data) > 0 {
			if err := json.Unmarshal(data, &req.body); err != nil {
				t.Errorf("body is not a JSON object: %q", data)
			}
		}
		got = append(got, req)
		switch {
		case strings.HasPrefix(req.path, "/v1/sys/"):
			io.WriteString(w, `{"type":"shamir","initialized":true,"sealed":false,"t":1,"n":1,"keys_base64":["a"],"root_token":"r"}`)
		case strings.HasPrefix(req.path, "/v1/transit/keys") && r.Method != "GET":
			w.WriteHeader(http.StatusNoContent)
		default:
			io.WriteString(w, `{"data":{"name":"k","ciphertext":"vault:v1:x","plaintext":"aGk=","signature":"vault:v1:s","valid":true}}`)
		}
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "plain")

	tests := []struct {
		args   []string
		stdin  string
		method string
		path   string
		body   map[string]any
	}{
		{[]string{"status"}, "", "GET", "/v1/sys/seal-status", nil},
		{[]string{"operator", "init", "-key-shares=3", "-key-threshold=2"}, "", "PUT", "/v1/sys/init",
			map[string]any{"secret_shares": 3.0, "secret_threshold": 2.0}},
		{[]string{"operator", "unseal"}, "  c2hhcmU=\n", "PUT", "/v1/sys/unseal", map[string]any{"key": "c2hhcmU="}},
		{[]string{"operator", "unseal", "abcd"}, "", "PUT", "/v1/sys/unseal", map[string]any{"key": "abcd"}},
		{[]string{"operator", "unseal", "-reset"}, "", "PUT", "/v1/sys/unseal", map[string]any{"reset": true}},
		{[]string{"operator", "seal"}, "", "PUT", "/v1/sys/seal", nil},
		{[]string{"keys", "create", "k"}, "", "POST", "/v1/transit/keys/k", map[string]any{}},
		{[]string{"keys", "create", "-type=ed25519", "-derived", "-convergent", "-exportable", "-allow-plaintext-backup",
			"-auto-rotate-period=30d", "-key-size=64", "k"}, "", "POST", "/v1/transit/keys/k",
			map[string]any{"type": "ed25519", "derived": true, "convergent_encryption": true, "exportable": true,
				"allow_plaintext_backup": true, "auto_rotate_period": "2592000s", "key_size": 64.0}},
		{[]string{"keys", "list"}, "", "LIST", "/v1/transit/keys", nil},
		{[]string{"keys", "read", "a/b"}, "", "GET", "/v1/transit/keys/a%2Fb", nil},
		{[]string{"keys", "rotate", "k"}, "", "POST", "/v1/transit/keys/k/rotate", map[string]any{}},
		{[]string{"keys", "config", "-min-decryption-version=2", "-deletion-allowed=false", "k"}, "", "POST", "/v1/transit/keys/k/config",
			map[string]any{"min_decryption_version": 2.0, "deletion_allowed": false}},
		{[]string{"keys", "config", "-auto-rotate-period=0", "k"}, "", "POST", "/v1/transit/keys/k/config",
			map[string]any{"auto_rotate_period": "0s"}},
		{[]string{"keys", "delete", "k"}, "", "DELETE", "/v1/transit/keys/k", nil},
		{[]string{"keys", "backup", "k", "-"}, "", "GET", "/v1/transit/backup/k", nil},
		{[]string{"keys", "backup", "-for=openbao", "k", "-"}, "", "GET", "/v1/transit/backup/k?format=openbao", nil},
		{[]string{"keys", "restore", "-"}, "YmFja3Vw\n", "POST", "/v1/transit/restore", map[string]any{"backup": "YmFja3Vw"}},
		{[]string{"keys", "restore", "-force", "-", "k"}, " YmFja3Vw\n", "POST", "/v1/transit/restore/k",
			map[string]any{"backup": "YmFja3Vw", "force": true}},
		{[]string{"encrypt", "k"}, "", "POST", "/v1/transit/encrypt/k", map[string]any{"plaintext": ""}},
		{[]string{"encrypt", "-context=ctx", "-aad=hdr", "k"}, "hi\n", "POST", "/v1/transit/encrypt/k",
			map[string]any{"plaintext": "aGkK", "context": "Y3R4", "associated_data": "aGRy"}},
		{[]string{"decrypt", "-out=" + out, "k"}, "\n vault:v1:abc \n", "POST", "/v1/transit/decrypt/k",
			map[string]any{"ciphertext": "vault:v1:abc"}},
		{[]string{"sign", "-hash-algorithm=sha2-512", "-signature-algorithm=pkcs1v15", "-marshaling-algorithm=jws", "-prehashed", "k"},
			"hi", "POST", "/v1/transit/sign/k", map[string]any{"input": "aGk=", "hash_algorithm": "sha2-512",
				"signature_algorithm": "pkcs1v15", "marshaling_algorithm": "jws", "prehashed": true}},
		{[]string{"verify", "-signature=vault:v1:s", "k"}, "hi", "POST", "/v1/transit/verify/k",
			map[string]any{"input": "aGk=", "signature": "vault:v1:s"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got = nil
			_, errOut, code := keyraft(t, map[string]string{"KEYRAFT_ADDR": srv.URL, "KEYRAFT_TOKEN": "tok"}, tt.stdin, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			r := got[0]
			if r.method != tt.method || r.path != tt.path || r.token != "tok" {
				t.Errorf("sent %s %s (token %q), want %s %s", r.method, r.path, r.token, tt.method, tt.path)
			}
			if !reflect.DeepEqual(r.body, tt.body) {
				t.Errorf("body %v\nwant %v", r.body, tt.body)
			}
		})
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "hi" {
		t.Errorf("decrypt -out wrote %q, %v", b, err)
	}
}

// TestIntegrationJSONOutput: with -format=json every command prints one
// JSON object, the data of the server's answer with the API's field
// names, never Vault's envelope around it; a change whose answer has no
// data prints nothing; the audit listings print one object per line.
func TestIntegrationJSONOutput(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "app")
	s.ok(t, nil, "keys", "create", "-type=ed25519", "signer")
	ct := strings.TrimSpace(string(s.ok(t, []byte("x"), "encrypt", "app")))
	sig := strings.TrimSpace(string(s.ok(t, []byte("x"), "sign", "signer")))
	tok := strings.TrimSpace(string(s.ok(t, nil, "token", "create", "-field=token")))
	pol := filepath.Join(t.TempDir(), "p.hcl")
	os.WriteFile(pol, []byte(`path "transit/encrypt/app" { capabilities = ["update"] }`), 0o600)
	snap := filepath.Join(t.TempDir(), "snap")

	// (lease_duration and renewable are also fields of a token's auth.)
	envelope := []string{"request_id", "lease_id", "data", "auth", "wrap_info", "warnings"}
	// cmd is the command's words, -format=json goes after them, then rest
	// (GRANT stands for the ID the grant request answered).
	var grantID string
	for _, c := range []struct {
		cmd, rest string
		stdin     string
		field     string // a field the object has; "" for no output
	}{
		{"status", "", "", "sealed"},
		{"keys create", "k1", "", "latest_version"},
		{"keys list", "", "", "keys"},
		{"keys read", "k1", "", "latest_version"},
		{"keys rotate", "k1", "", "latest_version"},
		{"keys config", "-deletion-allowed=true k1", "", "deletion_allowed"},
		{"keys disable", "k1", "", "state"},
		{"keys enable", "k1", "", "state"},
		{"encrypt", "app", "x", "ciphertext"},
		{"decrypt", "app", ct, "plaintext"},
		{"sign", "signer", "x", "signature"},
		{"verify", "-signature=" + sig + " signer", "x", "valid"},
		{"token create", "-policy=default", "", "client_token"},
		{"token lookup", "", "", "policies"},
		{"token renew", tok, "", "accessor"},
		{"token revoke", tok, "", ""},
		{"policy write", "p " + pol, "", ""},
		{"policy read", "p", "", "policy"},
		{"policy list", "", "", "keys"},
		{"policy delete", "p", "", ""},
		{"grant request", "-key=app -operation=decrypt -reason=r", "", "id"},
		{"grant list", "", "", "grants"},
		{"grant revoke", "GRANT", "", ""},
		{"plugin list", "", "", "detailed"},
		{"plugin list", "crypto", "", "crypto"},
		{"plugin info", "soft", "", "sha256"},
		{"plugin reload", "soft", "", "reload_id"},
		{"audit hash", "x", "", "hash"},
		{"audit verify", "", "", "valid"},
		{"report hygiene", "-fail-on=none", "", "findings"},
		{"operator key-status", "", "", "term"},
		{"operator rotate", "", "", "term"},
		{"operator members", "", "", "members"},
		{"operator raft list-peers", "", "", "config"},
		{"operator raft snapshot save", snap, "", ""},
		{"path-help", "transit/keys/app", "", "help"},
		{"keys delete", "k1", "", ""},
	} {
		args := append(append(strings.Fields(c.cmd), "-format=json"), strings.Fields(strings.ReplaceAll(c.rest, "GRANT", grantID))...)
		what := strings.Join(args, " ")
		out, errOut, code := s.kr(t, nil, []byte(c.stdin), args...)
		if code != 0 {
			t.Errorf("%s: exit %d, %q", what, code, errOut)
			continue
		}
		if c.field == "" {
			if len(out) != 0 {
				t.Errorf("%s printed %q, want nothing", what, out)
			}
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(out, &obj); err != nil {
			t.Errorf("%s: not one JSON object: %v\n%s", what, err, out)
			continue
		}
		if _, ok := obj[c.field]; !ok {
			t.Errorf("%s: no %q in %s", what, c.field, out)
		}
		for _, f := range envelope {
			if _, ok := obj[f]; ok {
				t.Errorf("%s: the envelope's %q in %s", what, f, out)
			}
		}
		if c.cmd == "grant request" {
			json.Unmarshal(obj["id"], &grantID)
		}
	}

	out := s.ok(t, nil, "audit", "query", "-format=json", "-limit=5")
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, line := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["seq"] == nil {
			t.Errorf("audit query -format=json line %q: %v", line, err)
		}
	}
	if len(lines) != 5 {
		t.Errorf("audit query -format=json -limit=5 printed %d lines", len(lines))
	}
}
