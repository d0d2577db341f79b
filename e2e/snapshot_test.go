package e2e

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

func rawSnapshot(t *testing.T, n *node, token, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, n.addr+"/v1/"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestSnapshotRestoreOntoFreshCluster: a snapshot saved from one running
// node restores onto a freshly initialized one (forced: another root of
// trust); the node seals, unseals with the first cluster's shares,
// decrypts the first cluster's ciphertexts, keeps working across a
// SIGKILL and restart, and its audit log records the restore.
func TestSnapshotRestoreOntoFreshCluster(t *testing.T) {
	t.Parallel()
	a := newConfigNode(t)
	a.start()
	sharesA, _, rootA := a.initNode(3, 2)
	a.unseal(sharesA[0], sharesA[1])
	ca := a.client(rootA)
	write(t, ca, "transit/keys/app", map[string]any{})
	for i := 0; i < 30; i++ {
		encrypt(t, ca, "app", []byte("filler"))
	}
	ct := encrypt(t, ca, "app", []byte("kept across clusters"))
	code, snap := rawSnapshot(t, a, rootA, "GET", "sys/storage/raft/snapshot", nil)
	if code != 200 || len(snap) < 100 {
		t.Fatalf("snapshot save: %d, %d bytes", code, len(snap))
	}
	a.stop()

	b := newConfigNode(t)
	b.start()
	sharesB, _, rootB := b.initNode(1, 1)
	b.unseal(sharesB[0])
	if code, body := rawSnapshot(t, b, rootB, "POST", "sys/storage/raft/snapshot", snap); code != 400 || !bytes.Contains(body, []byte("another cluster")) {
		t.Fatalf("unforced restore of another cluster: %d %s", code, body)
	}
	if code, _ := rawSnapshot(t, b, rootB, "POST", "sys/storage/raft/snapshot-force", []byte("garbage")); code != 400 {
		t.Fatalf("restore of garbage: %d", code)
	}
	if code, body := rawSnapshot(t, b, rootB, "POST", "sys/storage/raft/snapshot-force", snap); code != 204 {
		t.Fatalf("forced restore: %d %s", code, body)
	}
	cb := b.client("")
	if st, err := cb.Sys().SealStatus(); err != nil || !st.Sealed || st.T != 2 {
		t.Fatalf("after restore: %+v %v", st, err)
	}
	b.unseal(sharesA[1], sharesA[2])
	cb = b.client(rootA)
	if got := decrypt(t, cb, "app", ct); string(got) != "kept across clusters" {
		t.Fatalf("decrypt on the restored node: %q", got)
	}
	encrypt(t, cb, "app", []byte("written after the restore"))

	b.kill()
	b.start()
	b.unseal(sharesA[0], sharesA[2])
	cb = b.client(rootA)
	if got := decrypt(t, cb, "app", ct); string(got) != "kept across clusters" {
		t.Fatalf("decrypt after restart: %q", got)
	}
	if v := read(t, cb, "sys/audit/verify"); !boolean(t, v, "valid") {
		t.Fatalf("audit after restore and restart: %v", v)
	}
	s, err := cb.Logical().ReadWithData("sys/audit/events", map[string][]string{"operation": {"sys/storage"}, "outcome": {"allowed"}})
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := s.Data["events"].([]any)
	found := false
	for _, e := range evs {
		if d, ok := e.(map[string]any)["details"].(map[string]any); ok && d["replaced_audit_head_seq"] != nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit event records the restore: %v", evs)
	}
}
