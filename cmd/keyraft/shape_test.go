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
