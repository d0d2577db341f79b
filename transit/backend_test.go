package transit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/keys"
	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
	"github.com/keyraft/keyraft/store"
)

// countingBackends serves the real soft backend in process and records
// which handles were generated and destroyed. (The same operations
// through the real plugin process are tested in transport/plugins_test.go
// and e2e/plugins_test.go.)
type countingBackends struct {
	sdk.CryptoBackend
	mu        sync.Mutex
	generated map[string]bool
	destroyed map[string]bool
}

func newCountingBackends() *countingBackends {
	return &countingBackends{CryptoBackend: soft.New(), generated: map[string]bool{}, destroyed: map[string]bool{}}
}

func (c *countingBackends) Crypto(context.Context, string) (sdk.CryptoBackend, error) { return c, nil }
func (c *countingBackends) DefaultBackend() string                                    { return "soft" }

func (c *countingBackends) Generate(ctx context.Context, t string) (sdk.GeneratedKey, error) {
	g, err := c.CryptoBackend.Generate(ctx, t)
	if err == nil {
		c.mu.Lock()
		c.generated[string(g.Handle)] = true
		c.mu.Unlock()
	}
	return g, err
}

func (c *countingBackends) Destroy(ctx context.Context, k sdk.KeyRef) error {
	c.mu.Lock()
	c.destroyed[string(k.Handle)] = true
	c.mu.Unlock()
	return c.CryptoBackend.Destroy(ctx, k)
}

// live returns the handles generated and not destroyed.
func (c *countingBackends) live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for h := range c.generated {
		if !c.destroyed[h] {
			out = append(out, h)
		}
	}
	return out
}

// conflictingStore refuses the first n commits as conflicts, as when
// another node changed the key meanwhile.
type conflictingStore struct {
	*memStore
	mu sync.Mutex
	n  int
}

func (s *conflictingStore) Commit(ctx context.Context, txn *store.Txn) (uint64, error) {
	s.mu.Lock()
	if s.n > 0 {
		s.n--
		s.mu.Unlock()
		return 0, &fsm.ConflictError{Key: txn.Expect[0].Key}
	}
	s.mu.Unlock()
	return s.memStore.Commit(ctx, txn)
}

func (s *conflictingStore) conflicts(n int) { s.mu.Lock(); s.n = n; s.mu.Unlock() }

func recordHandles(t *testing.T, st *memStore, name string) []string {
	t.Helper()
	raw, _ := st.Get(fsm.RecordTransitKey + name)
	p, err := unmarshalPolicy(raw)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range p.BackendKeys {
		out = append(out, string(k.Handle))
	}
	return out
}

// Versions generated for an attempt that conflicted are destroyed on the
// backend: every object the backend keeps is named by the record.
func TestConflictedAttemptsLeaveNoBackendObjects(t *testing.T) {
	ctx := context.Background()
	st := &conflictingStore{memStore: newMemStore()}
	b := newCountingBackends()
	e := New(st, nil)
	e.Backends = b
	st.conflicts(3)
	if _, err := e.CreateKey(ctx, "k", fields(t, `{}`)); err != nil {
		t.Fatal(err)
	}
	st.conflicts(2)
	if _, err := e.RotateKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	live, inRecord := b.live(), recordHandles(t, st.memStore, "k")
	if len(live) != 2 || len(inRecord) != 2 {
		t.Fatalf("live handles %d, in the record %d; want 2 and 2", len(live), len(inRecord))
	}
	for _, h := range inRecord {
		if b.destroyed[h] {
			t.Fatal("a committed version was destroyed")
		}
	}
	if len(b.generated) != 2+3+2 {
		t.Fatalf("generated %d, want one per attempt (7)", len(b.generated))
	}
	// A change that fails after generating leaves nothing either.
	if _, err := e.CreateKey(ctx, "bad", fields(t, `{"auto_rotate_period":"1s"}`)); err == nil {
		t.Fatal("create with a bad period succeeded")
	}
	if len(b.live()) != 2 {
		t.Fatalf("a refused create left %d live objects", len(b.live())-2)
	}
}

// Trimming a backend key removes the trimmed versions' handles and
// material from the record and destroys them on the backend.
func TestTrimBackendKey(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	b := newCountingBackends()
	e := New(st, nil)
	e.Backends = b
	if _, err := e.CreateKey(ctx, "k", fields(t, `{}`)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := e.RotateKey(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.ConfigKey(ctx, "k", fields(t, `{"min_decryption_version":3,"min_encryption_version":3}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.TrimKey(ctx, "k", fields(t, `{"min_available_version":3}`)); err != nil {
		t.Fatal(err)
	}
	if h := recordHandles(t, st, "k"); len(h) != 1 || len(b.live()) != 1 || h[0] != b.live()[0] {
		t.Fatalf("after trim: record handles %d, live %d", len(h), len(b.live()))
	}
	_, err := e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk=","key_version":1}`))
	if !IsUserError(err) || !strings.Contains(err.Error(), "key_version 1") {
		t.Fatalf("encrypt with a trimmed version: %v", err)
	}
	if _, err := e.Encrypt(ctx, "k", fields(t, `{"plaintext":"aGk="}`)); err != nil {
		t.Fatal(err)
	}
}

// A backup cannot carry backend fields (it could aim a new key at another
// key's HSM object), and a record with inconsistent backend versions is
// an error, not a nil dereference.
func TestBackendFieldsFromOutsideAreRefused(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	e.Backends = newCountingBackends()
	if _, err := e.CreateKey(ctx, "src", fields(t, `{"exportable":true,"allow_plaintext_backup":true}`)); err != nil {
		t.Fatal(err)
	}
	resp, err := e.Backup("src")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(resp.Data["backup"].(string))
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	pol := doc["policy"].(map[string]any)
	pol["backend"] = "pkcs11"
	pol["backend_keys"] = map[string]any{"1": map[string]any{"handle": base64.StdEncoding.EncodeToString([]byte("victim"))}}
	forged, _ := json.Marshal(doc)
	_, err = e.Restore(ctx, "forged", fields(t, `{"backup":"`+base64.StdEncoding.EncodeToString(forged)+`"}`))
	if !IsUserError(err) || !strings.Contains(err.Error(), "crypto backend") {
		t.Fatalf("restore of a backup with backend fields: %v", err)
	}
	for _, rec := range []string{
		`{"name":"x","type":"aes256-gcm96","latest_version":1,"versions":{"1":{"version":1}},"backend":"soft","backend_keys":{"1":null}}`,
		`{"name":"x","type":"aes256-gcm96","latest_version":1,"versions":{"1":{"version":1}},"backend":"soft"}`,
		`{"name":"x","type":"aes256-gcm96","latest_version":1,"versions":{"1":{"version":1}},"backend_keys":{"1":{"handle":"aGk="}}}`,
		`{"name":"x","type":"aes256-gcm96","latest_version":1,"versions":{"1":{"version":1}},"backend":"soft","backend_keys":{"1":{"handle":"aGk="},"2":{"handle":"aGk="}}}`,
	} {
		if _, err := unmarshalPolicy([]byte(rec)); err == nil {
			t.Errorf("record accepted: %s", rec)
		}
	}
}

// Encryptions made on a backend count toward the version's limit like
// those made in process: encrypt (each batch item that succeeds), rewrap
// and datakey.
func TestBackendEncryptionsAreCounted(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	e.Backends = newCountingBackends()
	if _, err := e.CreateKey(ctx, "k", fields(t, `{}`)); err != nil {
		t.Fatal(err)
	}
	resp, err := e.Encrypt(ctx, "k", fields(t, `{"batch_input":[{"plaintext":"aGk="},{"plaintext":"aGk="},{"plaintext":"not base64!"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ct := resp.Data["batch_results"].([]map[string]any)[0]["ciphertext"].(string)
	if _, err := e.Rewrap(ctx, "k", fields(t, `{"ciphertext":"`+ct+`"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DataKey(ctx, "wrapped", "k", fields(t, `{}`)); err != nil {
		t.Fatal(err)
	}
	if n := e.usage.pending("k", 1); n != 4 {
		t.Fatalf("counted %d encryptions on the backend key, want 4 (2 of the batch, 1 rewrap, 1 datakey)", n)
	}
}

// flakyBackends is countingBackends whose Destroy fails a number of
// times first, as an HSM that is unreachable for a while.
type flakyBackends struct {
	*countingBackends
	mu    sync.Mutex
	fails int
}

func (f *flakyBackends) Crypto(context.Context, string) (sdk.CryptoBackend, error) { return f, nil }

func (f *flakyBackends) Destroy(ctx context.Context, k sdk.KeyRef) error {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return errors.New("token not present")
	}
	f.mu.Unlock()
	return f.countingBackends.Destroy(ctx, k)
}

func (f *flakyBackends) failNext(n int) { f.mu.Lock(); f.fails = n; f.mu.Unlock() }

// A backend object whose destruction was committed is destroyed even if
// the backend fails at first: the commit records it, and the leader's
// lifecycle pass retries until the backend confirms, then clears the
// record. Covers delete, trim and the leader's own destruction.
func TestBackendDestroyIsRetriedUntilItSucceeds(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	b := &flakyBackends{countingBackends: newCountingBackends()}
	e := New(st, nil)
	e.Backends = b
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e.Now = func() time.Time { return now }
	records := func() []string {
		t.Helper()
		r, err := st.List(fsm.RecordTransitBackendDestroy)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, name := range []string{"del", "trim", "doomed"} {
		if _, err := e.CreateKey(ctx, name, fields(t, `{}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.RotateKey(ctx, name); err != nil {
			t.Fatal(err)
		}
		e.ConfigKey(ctx, name, fields(t, `{"deletion_allowed":true,"min_decryption_version":2,"min_encryption_version":2}`))
	}
	if _, err := e.DestroyKey(ctx, "doomed", fields(t, `{"pending_window":"1h"}`)); err != nil {
		t.Fatal(err)
	}
	b.failNext(100)
	if _, err := e.DeleteKey(ctx, "del"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.TrimKey(ctx, "trim", fields(t, `{"min_available_version":2}`)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if _, err := e.LifecycleDue(ctx); err == nil {
		t.Fatal("a lifecycle pass whose backend destroys all failed reported no error")
	}
	// del: 2 objects, trim: 1, doomed: 2; none destroyed yet.
	if r := records(); len(r) != 5 {
		t.Fatalf("%d destroy records, want 5: %v", len(r), r)
	}
	if live := b.live(); len(live) != 6 {
		t.Fatalf("%d live objects, want 6 (before the backend recovers)", len(live))
	}
	b.failNext(2) // the backend recovers midway through the next pass
	if _, err := e.LifecycleDue(ctx); err == nil {
		t.Fatal("a pass with failing destroys reported no error")
	}
	if r := records(); len(r) != 2 {
		t.Fatalf("%d destroy records after a partial pass, want 2", len(r))
	}
	if _, err := e.LifecycleDue(ctx); err != nil {
		t.Fatal(err)
	}
	if r := records(); len(r) != 0 {
		t.Fatalf("destroy records left after the backend recovered: %v", r)
	}
	if live := b.live(); len(live) != 1 || !slices.Contains(recordHandles(t, st, "trim"), live[0]) {
		t.Fatalf("live objects %v, want only trim's version 2", live)
	}
}

// FuzzParseDestroyRecordKey: any record name parses or is refused, and a
// name made by destroyRecordKey comes back as it went in.
func FuzzParseDestroyRecordKey(f *testing.F) {
	f.Add("pkcs11/0a0b", []byte{1, 2, 3})
	f.Add("soft", []byte{})
	f.Add("/", []byte{0})
	f.Fuzz(func(t *testing.T, rest string, handle []byte) {
		parseDestroyRecordKey(rest)
		if rest == "" || strings.Contains(rest, "/") || len(handle) == 0 {
			return
		}
		k := strings.TrimPrefix(destroyRecordKey(rest, handle), fsm.RecordTransitBackendDestroy)
		b, h, err := parseDestroyRecordKey(k)
		if err != nil || b != rest || string(h) != string(handle) {
			t.Fatalf("round trip of %q %x: %q %x %v", rest, handle, b, h, err)
		}
	})
}

// A key whose crypto lacks an optional ability (crypto.go) is refused the
// operations that need it with a 400 that says why, whole requests and
// batch items alike; a key in this process, which has every ability, is
// served.
func TestMissingAbilitiesAreRefused(t *testing.T) {
	ctx := context.Background()
	e := New(newMemStore(), nil)
	e.Backends = newCountingBackends()
	for _, k := range []struct{ name, body string }{
		{"aes", `{}`}, {"ed", `{"type":"ed25519"}`}, {"mac", `{"type":"hmac"}`},
		{"local", `{"backend":"builtin","type":"ed25519"}`},
	} {
		if _, err := e.CreateKey(ctx, k.name, fields(t, k.body)); err != nil {
			t.Fatal(k.name, err)
		}
	}
	if l, _ := e.get("aes"); l.crypto.Name() != "soft" {
		t.Fatalf("aes lives on %q, want soft", l.crypto.Name())
	}
	pt := base64.StdEncoding.EncodeToString([]byte("hi"))
	want400 := func(what string, resp *Response, err error, msg string) {
		t.Helper()
		var te *Error
		if resp != nil && resp.Data["batch_results"] != nil {
			res := resp.Data["batch_results"].([]map[string]any)
			if resp.Status != 400 || !strings.Contains(res[0]["error"].(string), msg) {
				t.Fatalf("%s: status %d, %v; want 400 with %q", what, resp.Status, res, msg)
			}
			return
		}
		if !errors.As(err, &te) || te.Status != 400 || !strings.Contains(te.Msg, msg) {
			t.Fatalf("%s: %v; want a 400 with %q", what, err, msg)
		}
	}
	resp, err := e.Encrypt(ctx, "aes", fields(t, `{"plaintext":"`+pt+`","context":"Y3R4"}`))
	want400("encrypt with a context (Deriver)", resp, err, "context and nonce are only for derived keys")
	resp, err = e.Encrypt(ctx, "aes", fields(t, `{"batch_input":[{"plaintext":"`+pt+`","context":"Y3R4"}]}`))
	want400("batch item with a context (Deriver)", resp, err, "context and nonce are only for derived keys")
	resp, err = e.Sign(ctx, "ed", fields(t, `{"input":"`+pt+`","salt_length":"auto"}`))
	want400("sign with a salt length (OptionSigner)", resp, err, "salt_length is not supported")
	resp, err = e.HMAC(ctx, "mac", fields(t, `{"input":"`+pt+`","algorithm":"sha2-512"}`))
	want400("hmac sha2-512 (HMACAlgorithmer)", resp, err, "only sha2-256")
	resp, err = e.HMAC(ctx, "ed", fields(t, `{"input":"`+pt+`"}`))
	want400("hmac with an ed25519 key without an HMAC key (SeparateHMAC)", resp, err, "does not offer hmac")
	resp, err = e.Export(keys.ExportPublicKey, "ed", "")
	want400("export (Exporter)", resp, err, "cannot be exported")
	resp, err = e.ConfigKey(ctx, "aes", fields(t, `{"exportable":true}`))
	want400("exportable (Exporter)", resp, err, "cannot be made exportable")
	_, err = importableVersion(e.cryptoOf(&Policy{Backend: "soft"}), &Policy{Imported: true, LatestVersion: 1}, 0)
	want400("import_version (Importer)", nil, err, "cannot be imported into it")

	// The same requests on a key in this process are served.
	if _, err := e.Sign(ctx, "local", fields(t, `{"input":"`+pt+`","hash_algorithm":"sha2-512"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.HMAC(ctx, "local", fields(t, `{"input":"`+pt+`","algorithm":"sha2-512"}`)); err != nil {
		t.Fatal(err)
	}
	// And an AEAD key on soft has its node-side HMAC key, any algorithm.
	if _, err := e.HMAC(ctx, "aes", fields(t, `{"input":"`+pt+`","algorithm":"sha2-512"}`)); err != nil {
		t.Fatal(err)
	}
}
