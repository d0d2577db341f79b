package e2e

import (
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"
)

// TestVaultAPIClient is the acceptance test of the Vault dialect: a
// config-file node, initialized, unsealed and used only through the
// unmodified github.com/hashicorp/vault/api client, then killed with
// SIGKILL and restarted on its data dir. Everything acknowledged before
// the kill must still be there.
func TestVaultAPIClient(t *testing.T) {
	t.Parallel()
	n := newConfigNode(t)
	n.start()
	c := n.client("")

	// A fresh config node is neither initialized nor unsealed.
	st, err := c.Sys().SealStatus()
	if err != nil {
		t.Fatalf("sys/seal-status: %v", err)
	}
	if st.Initialized || !st.Sealed {
		t.Fatalf("fresh node: initialized=%v sealed=%v, want false/true", st.Initialized, st.Sealed)
	}
	if ok, err := c.Sys().InitStatus(); err != nil || ok {
		t.Fatalf("sys/init before init: %v, %v", ok, err)
	}

	initResp, err := c.Sys().Init(&vault.InitRequest{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatalf("sys/init: %v", err)
	}
	if len(initResp.Keys) != 5 || len(initResp.KeysB64) != 5 || initResp.RootToken == "" {
		t.Fatalf("sys/init: %d keys, %d base64 keys, root token given: %v", len(initResp.Keys), len(initResp.KeysB64), initResp.RootToken != "")
	}
	if _, err := c.Sys().Init(&vault.InitRequest{SecretShares: 5, SecretThreshold: 3}); statusOf(err) != 400 {
		t.Errorf("second sys/init: %v, want a 400", err)
	}
	// Shares 1, 2 and 3 in hex now; after the restart 5, 4 and 3 in base64.
	n.unseal(initResp.Keys[0], initResp.Keys[1], initResp.Keys[2])
	root := initResp.RootToken
	c.SetToken(root)

	self, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("auth/token/lookup-self: %v", err)
	}
	if id, _ := self.TokenID(); id != root {
		t.Errorf("lookup-self id = %q, want the root token", id)
	}
	if pols, _ := self.TokenPolicies(); !contains(pols, "root") {
		t.Errorf("lookup-self policies = %v, want root", pols)
	}

	var kept []sealed // every ciphertext answered before the kill

	// Keys: create, read, list.
	info := write(t, c, "transit/keys/app", map[string]any{"type": "aes256-gcm96"})
	if str(t, info, "type") != "aes256-gcm96" {
		t.Errorf("created key type %v", info["type"])
	}
	info = read(t, c, "transit/keys/app")
	if str(t, info, "name") != "app" || str(t, info, "type") != "aes256-gcm96" || num(t, info, "latest_version") != 1 {
		t.Errorf("transit/keys/app = %v", info)
	}
	write(t, c, "transit/keys/ed", map[string]any{"type": "ed25519"})
	write(t, c, "transit/keys/ec", map[string]any{"type": "ecdsa-p256"})
	write(t, c, "transit/keys/mac", map[string]any{"type": "hmac"})
	list, err := c.Logical().List("transit/keys")
	if err != nil || list == nil {
		t.Fatalf("list transit/keys: %v, %v", list, err)
	}
	names, _ := list.Data["keys"].([]any)
	for _, want := range []string{"app", "ec", "ed", "mac"} {
		if !containsAny(names, want) {
			t.Errorf("list transit/keys = %v, missing %q", names, want)
		}
	}

	// Encrypt and decrypt.
	pt1 := []byte("the first secret \x00 with a NUL")
	ct1 := encrypt(t, c, "app", pt1)
	if !strings.HasPrefix(ct1, "vault:v1:") {
		t.Errorf("ciphertext %q, want vault:v1:", ct1)
	}
	if got := decrypt(t, c, "app", ct1); string(got) != string(pt1) {
		t.Errorf("decrypt = %q, want %q", got, pt1)
	}
	kept = append(kept, sealed{"app", ct1, pt1, "v1 ciphertext"})

	// Rotate, then rewrap the v1 ciphertext to v2.
	if _, err := c.Logical().Write("transit/keys/app/rotate", nil); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if v := num(t, read(t, c, "transit/keys/app"), "latest_version"); v != 2 {
		t.Fatalf("latest_version after rotate = %d, want 2", v)
	}
	ct2 := str(t, write(t, c, "transit/rewrap/app", map[string]any{"ciphertext": ct1}), "ciphertext")
	if !strings.HasPrefix(ct2, "vault:v2:") {
		t.Errorf("rewrapped ciphertext %q, want vault:v2:", ct2)
	}
	if got := decrypt(t, c, "app", ct2); string(got) != string(pt1) {
		t.Errorf("rewrapped decrypts to %q, want %q", got, pt1)
	}
	kept = append(kept, sealed{"app", ct2, pt1, "rewrapped ciphertext"})
	pt3 := []byte("encrypted with v2")
	ct3 := encrypt(t, c, "app", pt3)
	if !strings.HasPrefix(ct3, "vault:v2:") {
		t.Errorf("ciphertext after rotate %q, want vault:v2:", ct3)
	}
	kept = append(kept, sealed{"app", ct3, pt3, "v2 ciphertext"})

	// Data keys.
	dk := write(t, c, "transit/datakey/plaintext/app", nil)
	dkPlain := mustDecodeB64(t, str(t, dk, "plaintext"))
	if len(dkPlain) != 32 {
		t.Errorf("datakey plaintext is %d bytes, want 32", len(dkPlain))
	}
	if got := decrypt(t, c, "app", str(t, dk, "ciphertext")); string(got) != string(dkPlain) {
		t.Errorf("datakey ciphertext does not decrypt to its plaintext")
	}
	kept = append(kept, sealed{"app", str(t, dk, "ciphertext"), dkPlain, "datakey (plaintext kind)"})
	wrapped := write(t, c, "transit/datakey/wrapped/app", map[string]any{"bits": 512})
	if _, has := wrapped["plaintext"]; has {
		t.Errorf("wrapped datakey answer holds a plaintext")
	}
	if got := decrypt(t, c, "app", str(t, wrapped, "ciphertext")); len(got) != 64 {
		t.Errorf("wrapped 512-bit datakey decrypts to %d bytes, want 64", len(got))
	}

	// Sign and verify with ed25519 and ecdsa-p256.
	msg := []byte("a message to sign")
	type sig struct{ key, signature string }
	var sigs []sig
	for _, key := range []string{"ed", "ec"} {
		s := str(t, write(t, c, "transit/sign/"+key, map[string]any{"input": b64(msg)}), "signature")
		if !strings.HasPrefix(s, "vault:v1:") {
			t.Errorf("%s signature %q, want vault:v1:", key, s)
		}
		if !boolean(t, write(t, c, "transit/verify/"+key, map[string]any{"input": b64(msg), "signature": s}), "valid") {
			t.Errorf("%s: a fresh signature does not verify", key)
		}
		if boolean(t, write(t, c, "transit/verify/"+key, map[string]any{"input": b64([]byte("another message")), "signature": s}), "valid") {
			t.Errorf("%s: the signature verifies for another message", key)
		}
		sigs = append(sigs, sig{key, s})
	}

	// HMAC, and its verification.
	mac := str(t, write(t, c, "transit/hmac/mac", map[string]any{"input": b64(msg)}), "hmac")
	if !strings.HasPrefix(mac, "vault:v1:") {
		t.Errorf("hmac %q, want vault:v1:", mac)
	}
	if !boolean(t, write(t, c, "transit/verify/mac", map[string]any{"input": b64(msg), "hmac": mac}), "valid") {
		t.Errorf("hmac does not verify")
	}
	if boolean(t, write(t, c, "transit/verify/mac", map[string]any{"input": b64([]byte("x")), "hmac": mac}), "valid") {
		t.Errorf("hmac verifies for another message")
	}

	// Batch encrypt and decrypt.
	batchPT := [][]byte{[]byte("batch one"), []byte(""), []byte("batch \x00 three")}
	var in []map[string]any
	for i, p := range batchPT {
		in = append(in, map[string]any{"plaintext": b64(p), "reference": string(rune('a' + i))})
	}
	res, _ := write(t, c, "transit/encrypt/app", map[string]any{"batch_input": in})["batch_results"].([]any)
	if len(res) != len(batchPT) {
		t.Fatalf("batch encrypt: %d results, want %d", len(res), len(batchPT))
	}
	var decIn []map[string]any
	for i, r := range res {
		m, _ := r.(map[string]any)
		if m["error"] != nil && m["error"] != "" {
			t.Fatalf("batch encrypt item %d: %v", i, m["error"])
		}
		if m["reference"] != string(rune('a'+i)) {
			t.Errorf("batch encrypt item %d: reference %v", i, m["reference"])
		}
		ct := str(t, m, "ciphertext")
		decIn = append(decIn, map[string]any{"ciphertext": ct})
		kept = append(kept, sealed{"app", ct, batchPT[i], "batch item"})
	}
	res, _ = write(t, c, "transit/decrypt/app", map[string]any{"batch_input": decIn})["batch_results"].([]any)
	if len(res) != len(batchPT) {
		t.Fatalf("batch decrypt: %d results, want %d", len(res), len(batchPT))
	}
	for i, r := range res {
		m, _ := r.(map[string]any)
		if got := string(mustDecodeB64(t, str(t, m, "plaintext"))); got != string(batchPT[i]) {
			t.Errorf("batch decrypt item %d = %q, want %q", i, got, batchPT[i])
		}
	}

	// The sys views.
	st, err = c.Sys().SealStatus()
	if err != nil || st.Sealed || !st.Initialized || st.T != 3 || st.N != 5 || st.Type != "shamir" {
		t.Errorf("sys/seal-status = %+v, %v", st, err)
	}
	health, err := c.Sys().Health()
	if err != nil || !health.Initialized || health.Sealed || health.Standby {
		t.Errorf("sys/health = %+v, %v", health, err)
	}
	leader, err := c.Sys().Leader()
	if err != nil || !leader.HAEnabled || !leader.IsSelf || leader.LeaderAddress != n.addr {
		t.Errorf("sys/leader = %+v, %v; want is_self with leader_address %s", leader, err, n.addr)
	}

	// Sealed: transit answers 503, status still answers.
	if err := c.Sys().Seal(); err != nil {
		t.Fatalf("sys/seal: %v", err)
	}
	_, err = c.Logical().Write("transit/encrypt/app", map[string]any{"plaintext": b64(pt1)})
	if statusOf(err) != 503 {
		t.Errorf("encrypt while sealed: %v, want status 503", err)
	}
	if _, err := c.Logical().Read("transit/keys/app"); statusOf(err) != 503 {
		t.Errorf("read key while sealed: %v, want status 503", err)
	}
	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != 503 {
		t.Errorf("lookup-self while sealed: %v, want status 503", err)
	}
	if st, err := c.Sys().SealStatus(); err != nil || !st.Sealed {
		t.Errorf("seal-status after seal: %+v, %v", st, err)
	}
	if h, err := c.Sys().Health(); err != nil || !h.Sealed {
		t.Errorf("health after seal: %+v, %v", h, err)
	}
	n.unseal(initResp.KeysB64[1], initResp.KeysB64[3], initResp.KeysB64[4])
	checkDecrypts(t, c, kept)

	// kill -9, restart on the same data dir: sealed, and a different subset
	// of shares unseals it.
	n.kill()
	n.start()
	c = n.client(root)
	st, err = c.Sys().SealStatus()
	if err != nil || !st.Initialized || !st.Sealed || st.Progress != 0 {
		t.Fatalf("after restart: seal-status %+v, %v; want initialized and sealed", st, err)
	}
	if _, err := c.Logical().Write("transit/decrypt/app", map[string]any{"ciphertext": ct1}); statusOf(err) != 503 {
		t.Errorf("decrypt on the restarted sealed node: %v, want status 503", err)
	}
	// A share given and then reset does not count.
	if st, err := c.Sys().Unseal(initResp.KeysB64[0]); err != nil || st.Progress != 1 {
		t.Fatalf("one share after restart: %+v, %v", st, err)
	}
	if st, err := c.Sys().ResetUnsealProcess(); err != nil || st.Progress != 0 || !st.Sealed {
		t.Fatalf("unseal reset: %+v, %v", st, err)
	}
	if _, err := c.Sys().Unseal("not a share"); statusOf(err) != 400 {
		t.Errorf("a malformed share: %v, want status 400", err)
	}
	n.unseal(initResp.KeysB64[4], initResp.KeysB64[3], initResp.KeysB64[2])
	if _, err := c.Auth().Token().LookupSelf(); err != nil {
		t.Errorf("root token after restart: %v", err)
	}
	checkDecrypts(t, c, kept)
	if v := num(t, read(t, c, "transit/keys/app"), "latest_version"); v != 2 {
		t.Errorf("latest_version after restart = %d, want 2", v)
	}
	for _, s := range sigs {
		if !boolean(t, write(t, c, "transit/verify/"+s.key, map[string]any{"input": b64(msg), "signature": s.signature}), "valid") {
			t.Errorf("%s signature made before the kill does not verify after it", s.key)
		}
	}
	if !boolean(t, write(t, c, "transit/verify/mac", map[string]any{"input": b64(msg), "hmac": mac}), "valid") {
		t.Errorf("hmac made before the kill does not verify after it")
	}
	// Deletion is refused until the key allows it.
	if _, err := c.Logical().Delete("transit/keys/app"); statusOf(err) != 400 {
		t.Errorf("delete without deletion_allowed: %v, want status 400", err)
	}
	if _, err := c.Logical().Read("transit/keys/app"); err != nil {
		t.Errorf("the key is gone after a refused delete: %v", err)
	}
	// And the restarted node takes new writes.
	n.waitLeader()
	write(t, c, "transit/keys/app/rotate", nil)
	if v := num(t, read(t, c, "transit/keys/app"), "latest_version"); v != 3 {
		t.Errorf("latest_version after a rotate on the restarted node = %d, want 3", v)
	}
	if code := n.stop(); code != 0 {
		t.Errorf("SIGTERM: exit code %d, want 0", code)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsAny(list []any, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
