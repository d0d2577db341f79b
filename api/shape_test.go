package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

// These tests check only the shape of what the client sends and how it
// reads Vault-shaped answers, against a recorder. The behaviour against
// the real server is for the integration tests.

type recorded struct {
	method, path string
	header       http.Header
	body         map[string]any
}

// recorder answers every request with status and body, and records it.
func recorder(t *testing.T, status int, answer string) (*Client, *[]recorded) {
	t.Helper()
	var reqs []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{method: r.Method, path: r.URL.EscapedPath(), header: r.Header}
		if r.URL.RawQuery != "" {
			rec.path += "?" + r.URL.RawQuery
		}
		data, _ := io.ReadAll(r.Body)
		if len(data) > 0 {
			if err := json.Unmarshal(data, &rec.body); err != nil {
				t.Errorf("request body is not a JSON object: %q", data)
			}
		}
		reqs = append(reqs, rec)
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{Address: srv.URL + "/prefix", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	return c, &reqs
}

func ptr[T any](v T) *T { return &v }

func TestRequestShapes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func(c *Client) error
		method string
		path   string
		body   map[string]any
	}{
		{"seal status", func(c *Client) error { _, err := c.SealStatus(ctx); return err },
			"GET", "/prefix/v1/sys/seal-status", nil},
		{"init", func(c *Client) error {
			_, err := c.Init(ctx, InitRequest{SecretShares: 5, SecretThreshold: 3})
			return err
		}, "PUT", "/prefix/v1/sys/init", map[string]any{"secret_shares": 5.0, "secret_threshold": 3.0}},
		{"unseal", func(c *Client) error { _, err := c.Unseal(ctx, "abcd"); return err },
			"PUT", "/prefix/v1/sys/unseal", map[string]any{"key": "abcd"}},
		{"unseal reset", func(c *Client) error { _, err := c.UnsealReset(ctx); return err },
			"PUT", "/prefix/v1/sys/unseal", map[string]any{"reset": true}},
		{"seal", func(c *Client) error { return c.Seal(ctx) }, "PUT", "/prefix/v1/sys/seal", nil},
		{"leader", func(c *Client) error { _, err := c.Leader(ctx); return err }, "GET", "/prefix/v1/sys/leader", nil},
		{"create key, defaults", func(c *Client) error { return c.CreateKey(ctx, "k", KeyOptions{}) },
			"POST", "/prefix/v1/transit/keys/k", map[string]any{}},
		{"create key, all options", func(c *Client) error {
			return c.CreateKey(ctx, "k", KeyOptions{Type: "ed25519", Derived: true, ConvergentEncryption: true,
				Exportable: true, AllowPlaintextBackup: true, AutoRotatePeriod: 24 * time.Hour, KeySize: 32})
		}, "POST", "/prefix/v1/transit/keys/k", map[string]any{"type": "ed25519", "derived": true,
			"convergent_encryption": true, "exportable": true, "allow_plaintext_backup": true,
			"auto_rotate_period": "86400s", "key_size": 32.0}},
		{"read key, escaped name", func(c *Client) error { _, err := c.ReadKey(ctx, "a/b"); return err },
			"GET", "/prefix/v1/transit/keys/a%2Fb", nil},
		{"list keys", func(c *Client) error { _, err := c.ListKeys(ctx); return err },
			"LIST", "/prefix/v1/transit/keys", nil},
		{"rotate", func(c *Client) error { return c.RotateKey(ctx, "k") },
			"POST", "/prefix/v1/transit/keys/k/rotate", nil},
		{"config, only what is set", func(c *Client) error {
			return c.ConfigureKey(ctx, "k", KeyConfig{MinDecryptionVersion: ptr(2), DeletionAllowed: ptr(false), AutoRotatePeriod: ptr(time.Duration(0))})
		}, "POST", "/prefix/v1/transit/keys/k/config", map[string]any{"min_decryption_version": 2.0,
			"deletion_allowed": false, "auto_rotate_period": "0s"}},
		{"delete", func(c *Client) error { return c.DeleteKey(ctx, "k") }, "DELETE", "/prefix/v1/transit/keys/k", nil},
		{"backup", func(c *Client) error { _, err := c.BackupKey(ctx, "a/b", ""); return err },
			"GET", "/prefix/v1/transit/backup/a%2Fb", nil},
		{"backup for OpenBao", func(c *Client) error { _, err := c.BackupKey(ctx, "k", "openbao"); return err },
			"GET", "/prefix/v1/transit/backup/k?format=openbao", nil},
		{"restore under the backup's name", func(c *Client) error { return c.RestoreKey(ctx, "", "YmFja3Vw", false) },
			"POST", "/prefix/v1/transit/restore", map[string]any{"backup": "YmFja3Vw"}},
		{"restore as, with force", func(c *Client) error { return c.RestoreKey(ctx, "k", "YmFja3Vw", true) },
			"POST", "/prefix/v1/transit/restore/k", map[string]any{"backup": "YmFja3Vw", "force": true}},
		{"encrypt empty plaintext", func(c *Client) error { _, err := c.Encrypt(ctx, "k", EncryptRequest{}); return err },
			"POST", "/prefix/v1/transit/encrypt/k", map[string]any{"plaintext": ""}},
		{"encrypt", func(c *Client) error {
			_, err := c.Encrypt(ctx, "k", EncryptRequest{Plaintext: []byte("hi"), Context: []byte("c"), AssociatedData: []byte("a"), KeyVersion: 2})
			return err
		}, "POST", "/prefix/v1/transit/encrypt/k", map[string]any{"plaintext": "aGk=", "context": "Yw==",
			"associated_data": "YQ==", "key_version": 2.0}},
		{"decrypt", func(c *Client) error {
			_, err := c.Decrypt(ctx, "k", DecryptRequest{Ciphertext: "vault:v1:xx", Context: []byte("c")})
			return err
		}, "POST", "/prefix/v1/transit/decrypt/k", map[string]any{"ciphertext": "vault:v1:xx", "context": "Yw=="}},
		{"sign", func(c *Client) error {
			_, err := c.Sign(ctx, "k", SignRequest{Input: []byte("hi"), HashAlgorithm: "sha2-512",
				SignatureAlgorithm: "pss", MarshalingAlgorithm: "jws", Prehashed: true})
			return err
		}, "POST", "/prefix/v1/transit/sign/k", map[string]any{"input": "aGk=", "hash_algorithm": "sha2-512",
			"signature_algorithm": "pss", "marshaling_algorithm": "jws", "prehashed": true}},
		{"verify", func(c *Client) error {
			_, err := c.Verify(ctx, "k", VerifyRequest{Input: []byte("hi"), Signature: "vault:v1:sig"})
			return err
		}, "POST", "/prefix/v1/transit/verify/k", map[string]any{"input": "aGk=", "signature": "vault:v1:sig"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, reqs := recorder(t, 200, `{"data":{"plaintext":""}}`)
			if err := tt.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			if len(*reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(*reqs))
			}
			r := (*reqs)[0]
			if r.method != tt.method || r.path != tt.path {
				t.Errorf("sent %s %s, want %s %s", r.method, r.path, tt.method, tt.path)
			}
			if !reflect.DeepEqual(r.body, tt.body) {
				t.Errorf("body %v, want %v", r.body, tt.body)
			}
			if r.header.Get("X-Vault-Token") != "tok" || r.header.Get("X-Vault-Request") != "true" {
				t.Errorf("headers %v", r.header)
			}
			if (tt.body != nil) != (r.header.Get("Content-Type") == "application/json") {
				t.Errorf("Content-Type %q with body %v", r.header.Get("Content-Type"), tt.body)
			}
		})
	}
}

func TestReadsVaultAnswers(t *testing.T) {
	ctx := context.Background()

	// sys endpoints answer at the top level in Vault; a data envelope is
	// accepted too.
	for _, answer := range []string{
		`{"type":"shamir","initialized":true,"sealed":true,"t":3,"n":5,"progress":1,"nonce":"x","version":"0.1.0"}`,
		`{"request_id":"r","data":{"type":"shamir","initialized":true,"sealed":true,"t":3,"n":5,"progress":1,"nonce":"x","version":"0.1.0"}}`,
	} {
		c, _ := recorder(t, 200, answer)
		s, err := c.SealStatus(ctx)
		want := SealStatus{Type: "shamir", Initialized: true, Sealed: true, T: 3, N: 5, Progress: 1, Nonce: "x", Version: "0.1.0"}
		if err != nil || *s != want {
			t.Errorf("SealStatus from %s: %+v, %v", answer, s, err)
		}
	}

	// An empty list is a 404 without messages.
	c, _ := recorder(t, 404, `{"errors":[]}`)
	if keys, err := c.ListKeys(ctx); err != nil || keys == nil || len(keys) != 0 {
		t.Errorf("ListKeys on 404: %v, %v", keys, err)
	}
	c, _ = recorder(t, 404, `{"errors":["no handler for route \"transit/keys\""]}`)
	if _, err := c.ListKeys(ctx); err == nil || err.Error() != `no handler for route "transit/keys" (status 404)` {
		t.Errorf("ListKeys on a 404 with a message: %v", err)
	}

	// Health decodes the body whatever the status.
	c, _ = recorder(t, 503, `{"initialized":true,"sealed":true,"standby":true,"version":"0.1.0"}`)
	if h, err := c.Health(ctx); err != nil || !h.Sealed || h.Version != "0.1.0" {
		t.Errorf("Health on 503: %+v, %v", h, err)
	}
	c, _ = recorder(t, 503, `{"errors":["overloaded"]}`)
	if _, err := c.Health(ctx); err == nil || err.Error() != "overloaded (status 503)" {
		t.Errorf("Health on a 503 error: %v", err)
	}

	// 204: nothing to decode.
	c, _ = recorder(t, 204, ``)
	var out map[string]any
	if err := c.Do(ctx, "POST", "transit/keys/k/rotate", nil, &out); err != nil || out != nil {
		t.Errorf("Do on 204: %v, %v", out, err)
	}

	// Decrypt decodes the base64 plaintext; refuses a broken one.
	c, _ = recorder(t, 200, `{"data":{"plaintext":"aGk="}}`)
	if pt, err := c.Decrypt(ctx, "k", DecryptRequest{Ciphertext: "vault:v1:x"}); err != nil || string(pt) != "hi" {
		t.Errorf("Decrypt: %q, %v", pt, err)
	}
	c, _ = recorder(t, 200, `{"data":{"plaintext":"!!"}}`)
	if _, err := c.Decrypt(ctx, "k", DecryptRequest{Ciphertext: "vault:v1:x"}); err == nil {
		t.Errorf("Decrypt accepted a broken plaintext")
	}

	// A 200 without data is an error for the typed helpers.
	c, _ = recorder(t, 200, `{"request_id":"r"}`)
	if _, err := c.ReadKey(ctx, "k"); err == nil || err.Error() != "GET transit/keys/k: the response has no data" {
		t.Errorf("ReadKey without data: %v", err)
	}

	// A key as Vault describes it.
	c, _ = recorder(t, 200, `{"data":{"name":"k","type":"ecdsa-p256","latest_version":2,"min_decryption_version":1,
		"auto_rotate_period":86400,"supports_signing":true,"keys":{"1":{"public_key":"pem"},"2":{"public_key":"pem2"}}}}`)
	k, err := c.ReadKey(ctx, "k")
	if err != nil || k.Type != "ecdsa-p256" || k.LatestVersion != 2 || k.AutoRotatePeriod != 86400 ||
		!k.SupportsSigning || string(k.Keys["2"]) != `{"public_key":"pem2"}` {
		t.Errorf("ReadKey: %+v, %v", k, err)
	}

	// Verify: a mismatch is false, not an error.
	c, _ = recorder(t, 200, `{"data":{"valid":false}}`)
	if ok, err := c.Verify(ctx, "k", VerifyRequest{Signature: "vault:v1:x"}); ok || err != nil {
		t.Errorf("Verify: %v, %v", ok, err)
	}
}

// TestWarnings: the warnings of a successful answer reach the handler,
// whichever helper made the call; none, no call.
func TestWarnings(t *testing.T) {
	ctx := context.Background()
	c, _ := recorder(t, 200, `{"data":{"plaintext":"aGk=","ciphertext":"vault:v1:x"},"warnings":["key \"k\" is compromised","second"]}`)
	var got [][]string
	c.SetWarningHandler(func(w []string) { got = append(got, w) })
	if _, err := c.Decrypt(ctx, "k", DecryptRequest{Ciphertext: "vault:v1:x"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "POST", "transit/keys/k", nil, nil); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{`key "k" is compromised`, "second"}, {`key "k" is compromised`, "second"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}

	quiet, _ := recorder(t, 200, `{"data":{"ciphertext":"vault:v1:x"},"warnings":null}`)
	quiet.SetWarningHandler(func(w []string) { t.Errorf("warnings %q from an answer without any", w) })
	if _, err := quiet.Encrypt(ctx, "k", EncryptRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestResponseErrorNamesTheRequest: a refusal carries the method and the
// path (under /v1/, unescaped, without the query) it answered.
func TestResponseErrorNamesTheRequest(t *testing.T) {
	c, _ := recorder(t, 403, `{"errors":["permission denied"]}`)
	_, err := c.Decrypt(context.Background(), "a/b", DecryptRequest{Ciphertext: "x"})
	var re *ResponseError
	if !errors.As(err, &re) || re.Method != "POST" || re.Path != "transit/decrypt/a/b" || err.Error() != "permission denied (status 403)" {
		t.Fatalf("%#v", err)
	}
	if _, err := c.Stream(context.Background(), "sys/audit/export?from_seq=1"); !errors.As(err, &re) || re.Method != "GET" || re.Path != "sys/audit/export" {
		t.Fatalf("Stream: %#v", err)
	}
}
