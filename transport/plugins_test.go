package transport

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/internal/testwait"
	"github.com/keyraft/keyraft/plugins/catalog"
	"github.com/keyraft/keyraft/transit"
)

var softBuild struct {
	once sync.Once
	path string
	err  error
}

// softBinary builds the real soft crypto plugin once per test run.
func softBinary(t testing.TB) string {
	t.Helper()
	softBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "keyraft-transport-plugins-")
		if err != nil {
			softBuild.err = err
			return
		}
		softBuild.path = filepath.Join(dir, "keyraft-plugin-soft")
		out, err := exec.Command("go", "build", "-o", softBuild.path, "github.com/keyraft/keyraft/cmd/keyraft-plugin-soft").CombinedOutput()
		if err != nil {
			softBuild.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if softBuild.err != nil {
		t.Fatal(softBuild.err)
	}
	return softBuild.path
}

// softPlugin returns the built-in catalog of a node whose soft backend is
// the real plugin binary, and the manager that runs it.
func softPlugin(t testing.TB, node func() *cluster.Node) ([]catalog.Entry, *catalog.Manager) {
	bin := softBinary(t)
	sum, err := catalog.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	builtins := []catalog.Entry{{Name: "soft", Type: catalog.TypeCrypto, Command: bin, SHA256: sum, Builtin: true, Version: "builtin"}}
	dir := t.TempDir()
	m := catalog.NewManager(catalog.ManagerConfig{
		Dir: dir, Default: "soft",
		Lookup: func(typ, name string) (*catalog.Entry, error) { return node().PluginEntry(typ, name) },
	})
	t.Cleanup(m.Close)
	return builtins, m
}

func TestTransitKeysOnTheSoftPlugin(t *testing.T) {
	h := newHarness(t, harnessOpts{plugins: true})
	r := h.do("POST", "transit/keys/app", map[string]any{})
	if r.status != 200 || r.data()["backend"] != "soft" {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	// Single item, with associated data.
	r = h.do("POST", "transit/encrypt/app", map[string]any{"plaintext": b64("hello"), "associated_data": b64("ctx")})
	ct := r.str("ciphertext")
	if r.status != 200 || !strings.HasPrefix(ct, "vault:v1:") {
		t.Fatalf("encrypt: %d %s", r.status, r.raw)
	}
	r = h.do("POST", "transit/decrypt/app", map[string]any{"ciphertext": ct, "associated_data": b64("ctx")})
	if r.status != 200 || r.str("plaintext") != b64("hello") {
		t.Fatalf("decrypt: %d %s", r.status, r.raw)
	}
	if r = h.do("POST", "transit/decrypt/app", map[string]any{"ciphertext": ct, "associated_data": b64("other")}); r.status != 400 {
		t.Fatalf("decrypt with the wrong associated data: %d %s", r.status, r.raw)
	}
	if r = h.do("POST", "transit/decrypt/app", map[string]any{"ciphertext": ct, "context": b64("x"), "associated_data": b64("ctx")}); r.status != 400 {
		t.Fatalf("context on a non-derived backend key: %d %s", r.status, r.raw)
	}
	// A batch is one backend call; items keep their order, references and errors.
	r = h.do("POST", "transit/encrypt/app", map[string]any{"batch_input": []map[string]any{
		{"plaintext": b64("one"), "reference": "a"}, {"plaintext": "not base64!", "reference": "b"}, {"plaintext": b64("three"), "reference": "c"},
	}})
	res, _ := r.data()["batch_results"].([]any)
	if r.status != 400 || len(res) != 3 {
		t.Fatalf("batch encrypt: %d %s", r.status, r.raw)
	}
	var decIn []map[string]any
	for i, want := range []string{"a", "b", "c"} {
		m := res[i].(map[string]any)
		if m["reference"] != want || (i == 1) != (m["error"] != nil) {
			t.Fatalf("batch item %d = %v", i, m)
		}
		if i != 1 {
			decIn = append(decIn, map[string]any{"ciphertext": m["ciphertext"]})
		}
	}
	r = h.do("POST", "transit/decrypt/app", map[string]any{"batch_input": decIn})
	res, _ = r.data()["batch_results"].([]any)
	if r.status != 200 || len(res) != 2 || res[0].(map[string]any)["plaintext"] != b64("one") || res[1].(map[string]any)["plaintext"] != b64("three") {
		t.Fatalf("batch decrypt: %d %s", r.status, r.raw)
	}
	// Rotation generates version 2 on the backend; rewrap moves to it.
	if r = h.do("POST", "transit/keys/app/rotate", nil); r.status != 200 || r.data()["latest_version"] != float64(2) {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	r = h.do("POST", "transit/rewrap/app", map[string]any{"ciphertext": ct, "associated_data": b64("ctx")})
	ct2 := r.str("ciphertext")
	if r.status != 200 || !strings.HasPrefix(ct2, "vault:v2:") {
		t.Fatalf("rewrap: %d %s", r.status, r.raw)
	}
	if r = h.do("POST", "transit/decrypt/app", map[string]any{"ciphertext": ct2, "associated_data": b64("ctx")}); r.str("plaintext") != b64("hello") {
		t.Fatalf("decrypt after rewrap: %d %s", r.status, r.raw)
	}
	// Data keys.
	r = h.do("POST", "transit/datakey/plaintext/app", map[string]any{"bits": 128})
	pt, _ := base64.StdEncoding.DecodeString(r.str("plaintext"))
	if r.status != 200 || len(pt) != 16 {
		t.Fatalf("datakey: %d %s", r.status, r.raw)
	}
	if r = h.do("POST", "transit/decrypt/app", map[string]any{"ciphertext": r.str("ciphertext")}); r.str("plaintext") != base64.StdEncoding.EncodeToString(pt) {
		t.Fatalf("decrypt of the data key: %d %s", r.status, r.raw)
	}
	// Vault's hmac endpoint works with any key, through a per-version
	// HMAC key: the node keeps one for keys whose backend keeps no material.
	r = h.do("POST", "transit/hmac/app/sha2-512", map[string]any{"input": b64("x")})
	if r.status != 200 || !strings.HasPrefix(r.str("hmac"), "vault:v2:") {
		t.Fatalf("hmac with an encryption key on a backend: %d %s", r.status, r.raw)
	}
	if v := h.do("POST", "transit/verify/app/sha2-512", map[string]any{"input": b64("x"), "hmac": r.str("hmac")}); v.data()["valid"] != true {
		t.Fatalf("verify hmac: %s", v.raw)
	}
	// What a backend key does not offer is refused clearly.
	if r = h.do("POST", "transit/sign/app", map[string]any{"input": b64("x")}); r.status != 400 {
		t.Fatalf("sign with an aes key: %d %s", r.status, r.raw)
	}
	if r = h.do("POST", "transit/keys/app/config", map[string]any{"exportable": true}); r.status != 400 {
		t.Fatalf("making a backend key exportable: %d %s", r.status, r.raw)
	}
}

func (r resp) rawText() string { return string(r.raw) }

func TestChoosingTheBackendOfAKey(t *testing.T) {
	h := newHarness(t, harnessOpts{plugins: true})
	cases := []struct {
		body        map[string]any
		status      int
		wantBackend string
	}{
		{map[string]any{}, 200, "soft"},
		{map[string]any{"backend": "soft"}, 200, "soft"},
		{map[string]any{"backend": "builtin"}, 200, "builtin"},
		// The default backend cannot hold these: they stay in-process.
		{map[string]any{"type": "rsa-2048"}, 200, "builtin"},
		{map[string]any{"exportable": true}, 200, "builtin"},
		{map[string]any{"derived": true}, 200, "builtin"},
		// Asked for explicitly, they are refused.
		{map[string]any{"backend": "soft", "type": "rsa-2048"}, 400, ""},
		{map[string]any{"backend": "soft", "exportable": true}, 400, ""},
		{map[string]any{"backend": "no-such-backend"}, 400, ""},
	}
	for i, c := range cases {
		name := fmt.Sprintf("k%d", i)
		r := h.do("POST", "transit/keys/"+name, c.body)
		if r.status != c.status {
			t.Fatalf("case %d %v: status %d %s", i, c.body, r.status, r.raw)
		}
		if c.status == 200 && r.data()["backend"] != c.wantBackend {
			t.Fatalf("case %d %v: backend %v, want %s", i, c.body, r.data()["backend"], c.wantBackend)
		}
		if c.status != 200 {
			if len(r.errs()) == 0 || r.errs()[0] == "" {
				t.Fatalf("case %d: no reason given: %s", i, r.raw)
			}
			if g := h.do("GET", "transit/keys/"+name, nil); g.status != 404 {
				t.Fatalf("case %d: a refused create left a key: %d", i, g.status)
			}
		}
	}
	// Upsert by encrypt lands on the default backend too.
	if r := h.do("POST", "transit/encrypt/up", map[string]any{"plaintext": b64("x")}); r.status != 200 {
		t.Fatalf("upsert: %d %s", r.status, r.raw)
	}
	if r := h.do("GET", "transit/keys/up", nil); r.data()["backend"] != "soft" {
		t.Fatalf("upserted key backend = %v", r.data()["backend"])
	}
}

// A SIGKILLed crypto plugin costs at most the requests in flight: they
// fail with a clear 503; the node keeps serving and the plugin is back.
func TestCryptoPluginKilledUnderLoad(t *testing.T) {
	h := newHarness(t, harnessOpts{plugins: true})
	if r := h.do("POST", "transit/keys/app", map[string]any{}); r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	status := func() catalog.Status { return h.api.cfg.Plugins.Status()["soft"] }
	pid := status().Pid
	stop := make(chan struct{})
	type outcome struct {
		status int
		body   string
	}
	results := make(chan outcome, 100000)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hw := h.with(t)
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := hw.do("POST", "transit/encrypt/app", map[string]any{"plaintext": b64("payload")})
				results <- outcome{r.status, string(r.raw)}
			}
		}()
	}
	testwait.Within(t, 10*time.Second, "requests before the kill", func() bool { return len(results) > 50 })
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testwait.Within(t, 20*time.Second, "the plugin to restart", func() bool { s := status(); return s.Running && s.Pid != pid })
	after := len(results)
	testwait.Within(t, 20*time.Second, "requests after the restart", func() bool { return len(results) > after+50 })
	close(stop)
	wg.Wait()
	close(results)
	failed := 0
	for o := range results {
		switch {
		case o.status == 200:
		case o.status == http.StatusServiceUnavailable && strings.Contains(o.body, `crypto backend \"soft\"`):
			failed++
		default:
			t.Fatalf("unexpected answer during the crash: %d %s", o.status, o.body)
		}
	}
	t.Logf("requests failed by the crash: %d", failed)
	// Later requests all succeed.
	for i := 0; i < 20; i++ {
		if r := h.do("POST", "transit/encrypt/app", map[string]any{"plaintext": b64("after")}); r.status != 200 {
			t.Fatalf("after the restart: %d %s", r.status, r.raw)
		}
	}
}

func TestPluginCatalogAPI(t *testing.T) {
	h := newHarness(t, harnessOpts{plugins: true})
	dir := t.TempDir()
	h.api.cfg.PluginDirectory = dir
	// The manager runs registered plugins from its own directory: use the same one.
	*h.api.cfg.Plugins = *catalog.NewManager(catalog.ManagerConfig{Dir: dir, Default: "soft",
		Lookup: func(typ, name string) (*catalog.Entry, error) { return h.node.PluginEntry(typ, name) }})
	t.Cleanup(h.api.cfg.Plugins.Close)
	data, err := os.ReadFile(softBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "keyraft-plugin-ext"), data, 0o755)
	sum, _ := catalog.FileSHA256(filepath.Join(dir, "keyraft-plugin-ext"))

	r := h.do("GET", "sys/plugins/catalog", nil)
	detailed, _ := r.data()["detailed"].([]any)
	if r.status != 200 || len(detailed) != 1 || detailed[0].(map[string]any)["sha256"] == "" {
		t.Fatalf("catalog: %d %s", r.status, r.raw)
	}
	bad := []struct {
		path   string
		body   any
		status int
		want   string
	}{
		{"sys/plugins/catalog/crypto/ext", map[string]any{"command": "keyraft-plugin-ext", "sha256": strings.Repeat("0", 64)}, 400, "sha256 mismatch"},
		{"sys/plugins/catalog/crypto/ext", map[string]any{"command": "missing-file", "sha256": sum}, 400, "not found in plugin_directory"},
		{"sys/plugins/catalog/crypto/ext", map[string]any{"command": "../keyraft-plugin-ext", "sha256": sum}, 400, "without a path"},
		{"sys/plugins/catalog/crypto/ext", map[string]any{"command": "keyraft-plugin-ext", "sha256": "xyz"}, 400, "64 hex digits"},
		{"sys/plugins/catalog/crypto/ext", map[string]any{"command": "keyraft-plugin-ext", "sha256": sum, "colour": "red"}, 400, "unknown field"},
		{"sys/plugins/catalog/crypto/ext", "", 400, "missing request body"},
		{"sys/plugins/catalog/crypto/soft", map[string]any{"command": "keyraft-plugin-ext", "sha256": sum}, 400, "ships with keyraft"},
		{"sys/plugins/catalog/database/ext", map[string]any{"command": "keyraft-plugin-ext", "sha256": sum}, 400, "unknown plugin type"},
	}
	for _, c := range bad {
		r := h.do("PUT", c.path, c.body)
		if r.status != c.status || !strings.Contains(r.rawText(), c.want) {
			t.Fatalf("PUT %s %v: %d %s, want %d mentioning %q", c.path, c.body, r.status, r.raw, c.status, c.want)
		}
	}
	if r := h.do("GET", "sys/plugins/catalog/crypto/ext", nil); r.status != 404 {
		t.Fatalf("a refused registration left an entry: %d %s", r.status, r.raw)
	}
	if r := h.do("PUT", "sys/plugins/catalog/crypto/ext", map[string]any{"command": "keyraft-plugin-ext", "sha256": sum, "version": "v1.2.3"}); r.status != 204 {
		t.Fatalf("register: %d %s", r.status, r.raw)
	}
	if r := h.do("LIST", "sys/plugins/catalog/crypto", nil); !strings.Contains(r.rawText(), `"ext"`) {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	if r := h.do("POST", "transit/keys/on-ext", map[string]any{"backend": "ext"}); r.status != 200 || r.data()["backend"] != "ext" {
		t.Fatalf("create on ext: %d %s", r.status, r.raw)
	}
	r = h.do("POST", "transit/encrypt/on-ext", map[string]any{"plaintext": b64("hi")})
	if r.status != 200 {
		t.Fatalf("encrypt on ext: %d %s", r.status, r.raw)
	}
	ct := r.str("ciphertext")
	info := h.do("GET", "sys/plugins/catalog/crypto/ext", nil)
	pid := info.data()["pid"]
	if info.data()["running"] != true || info.data()["version"] != "v1.2.3" {
		t.Fatalf("info: %s", info.raw)
	}
	if r := h.do("PUT", "sys/plugins/reload/backend", map[string]any{"plugin": "ext"}); r.status != 200 {
		t.Fatalf("reload: %d %s", r.status, r.raw)
	}
	if r := h.do("POST", "transit/decrypt/on-ext", map[string]any{"ciphertext": ct}); r.status != 200 || r.str("plaintext") != b64("hi") {
		t.Fatalf("decrypt after reload: %d %s", r.status, r.raw)
	}
	if info := h.do("GET", "sys/plugins/catalog/crypto/ext", nil); info.data()["pid"] == pid {
		t.Fatalf("reload kept pid %v", pid)
	}
	if r := h.do("PUT", "sys/plugins/reload/backend", map[string]any{"plugin": "nope"}); r.status != 404 {
		t.Fatalf("reload of an unknown plugin: %d %s", r.status, r.raw)
	}
	// A binary swapped on disk is refused when the plugin next starts.
	os.Remove(filepath.Join(dir, "keyraft-plugin-ext"))
	os.WriteFile(filepath.Join(dir, "keyraft-plugin-ext"), append(data, 1), 0o755)
	// The reload says so at once.
	if r := h.do("PUT", "sys/plugins/reload/backend", map[string]any{"plugin": "ext"}); r.status != 503 ||
		!strings.Contains(r.rawText(), `plugin \"ext\" was reloaded in the catalog, but it does not start on this node`) || !strings.Contains(r.rawText(), "checksum mismatch") {
		t.Fatalf("reload of a tampered binary: %d %s", r.status, r.raw)
	}
	r = h.do("POST", "transit/decrypt/on-ext", map[string]any{"ciphertext": ct})
	if r.status != 503 || !strings.Contains(r.rawText(), "checksum mismatch") {
		t.Fatalf("decrypt with a tampered binary: %d %s", r.status, r.raw)
	}
	if r := h.do("DELETE", "sys/plugins/catalog/crypto/ext", nil); r.status != 204 {
		t.Fatalf("deregister: %d %s", r.status, r.raw)
	}
	if r := h.do("DELETE", "sys/plugins/catalog/crypto/soft", nil); r.status != 400 {
		t.Fatalf("deregister of a built-in: %d %s", r.status, r.raw)
	}
	if r := h.do("POST", "transit/encrypt/on-ext", map[string]any{"plaintext": b64("hi")}); r.status != 400 || !strings.Contains(r.rawText(), "not found") {
		t.Fatalf("use of a deregistered backend: %d %s", r.status, r.raw)
	}
}

func FuzzPluginRegisterBody(f *testing.F) {
	f.Add([]byte(`{"sha256":"00","command":"x","args":["-a"],"env":["A=B"],"version":"1"}`))
	f.Add([]byte(`{"sha256":1}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		f, err := transit.ParseFields(b)
		if err != nil {
			return
		}
		body, err := decodePluginRegister(f)
		if err != nil {
			return
		}
		e := catalog.Entry{Name: "x", Type: catalog.TypeCrypto, Command: body.Command, Args: body.Args, Env: body.Env, SHA256: body.SHA256, Version: body.Version}
		if e.Validate() == nil && strings.ContainsAny(e.Command, "/\\") {
			t.Fatalf("command %q with a path accepted", e.Command)
		}
	})
}

func TestSigningAndHMACKeysOnTheSoftPlugin(t *testing.T) {
	h := newHarness(t, harnessOpts{plugins: true})
	r := h.do("POST", "transit/keys/signer", map[string]any{"type": "ed25519"})
	if r.status != 200 || r.data()["backend"] != "soft" {
		t.Fatalf("create ed25519: %d %s", r.status, r.raw)
	}
	pubB64, _ := r.data()["keys"].(map[string]any)["1"].(map[string]any)["public_key"].(string)
	pub, err := base64.StdEncoding.DecodeString(pubB64)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("public key in the key info: %q", pubB64)
	}
	r = h.do("POST", "transit/sign/signer", map[string]any{"batch_input": []map[string]any{{"input": b64("one")}, {"input": b64("two")}}})
	res, _ := r.data()["batch_results"].([]any)
	if r.status != 200 || len(res) != 2 {
		t.Fatalf("batch sign: %d %s", r.status, r.raw)
	}
	for i, msg := range []string{"one", "two"} {
		sig := res[i].(map[string]any)["signature"].(string)
		body, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "vault:v1:"))
		if !ed25519.Verify(pub, []byte(msg), body) {
			t.Fatalf("signature %d does not verify with the published public key", i)
		}
		if v := h.do("POST", "transit/verify/signer", map[string]any{"input": b64(msg), "signature": sig}); v.data()["valid"] != true {
			t.Fatalf("verify %d: %s", i, v.raw)
		}
		if v := h.do("POST", "transit/verify/signer", map[string]any{"input": b64("forged"), "signature": sig}); v.status != 200 || v.data()["valid"] != false {
			t.Fatalf("verify of another message: %s", v.raw)
		}
	}
	// prehashed means nothing to pure Ed25519 (as in Vault): the same
	// signature, with a warning.
	plain := h.must(200, "POST", "transit/sign/signer", map[string]any{"input": b64("x")}).str("signature")
	if r := h.must(200, "POST", "transit/sign/signer", map[string]any{"input": b64("x"), "prehashed": true}); r.str("signature") != plain || len(r.warnings()) != 1 {
		t.Fatalf("prehashed ed25519 on the plugin: %s", r.raw)
	}

	r = h.do("POST", "transit/keys/mac", map[string]any{"type": "hmac"})
	if r.status != 200 || r.data()["backend"] != "soft" {
		t.Fatalf("create hmac: %d %s", r.status, r.raw)
	}
	r = h.do("POST", "transit/hmac/mac", map[string]any{"input": b64("data")})
	mac := r.str("hmac")
	if r.status != 200 || !strings.HasPrefix(mac, "vault:v1:") {
		t.Fatalf("hmac: %d %s", r.status, r.raw)
	}
	if again := h.do("POST", "transit/hmac/mac", map[string]any{"input": b64("data")}); again.str("hmac") != mac {
		t.Fatalf("hmac is not deterministic: %s vs %s", again.str("hmac"), mac)
	}
	if v := h.do("POST", "transit/verify/mac", map[string]any{"input": b64("data"), "hmac": mac}); v.data()["valid"] != true {
		t.Fatalf("verify hmac: %s", v.raw)
	}
	if v := h.do("POST", "transit/verify/mac", map[string]any{"input": b64("other"), "hmac": mac}); v.status != 200 || v.data()["valid"] != false {
		t.Fatalf("verify hmac of other data: %s", v.raw)
	}
	if r := h.do("POST", "transit/hmac/mac/sha2-512", map[string]any{"input": b64("data")}); r.status != 400 {
		t.Fatalf("sha2-512 on a backend hmac key: %d %s", r.status, r.raw)
	}
	if r := h.do("POST", "transit/keys/mac64", map[string]any{"type": "hmac", "key_size": 64}); r.data()["backend"] != "builtin" {
		t.Fatalf("a 64-byte hmac key: %s", r.raw)
	}
}
