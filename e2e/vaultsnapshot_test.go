package e2e

import (
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/keyraft/keyraft/cluster/snapfile"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/testwait"
)

// vaultSave saves a snapshot through the vault/api client into a file
// and checks that it is an archive holding the state machine's stream.
func vaultSave(t *testing.T, c *vault.Client, path string) []byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := c.Sys().RaftSnapshot(f); err != nil {
		t.Fatalf("vault/api RaftSnapshot: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stateOf(t, b)
	return b
}

// stateOf is an archive's state.bin, checked by the state machine: the
// raw snapshot stream, which is what keyraft versions before the
// archive saved.
func stateOf(t *testing.T, archive []byte) []byte {
	t.Helper()
	var state bytes.Buffer
	if _, err := snapfile.Read(bytes.NewReader(archive), math.MaxInt64, func(r io.Reader) error {
		_, err := io.Copy(&state, r)
		return err
	}); err != nil {
		t.Fatalf("not a whole archive: %v", err)
	}
	if _, err := fsm.ValidateSnapshot(bytes.NewReader(state.Bytes())); err != nil {
		t.Fatalf("the archive's state.bin: %v", err)
	}
	return state.Bytes()
}

// vaultRestore restores the file at path through the vault/api client.
func vaultRestore(c *vault.Client, path string, force bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.Sys().RaftSnapshotRestore(f, force)
}

// waitRestored waits until every node of the cluster serves again after
// a restore: the leader seals itself and is unsealed with shares. The
// tests restore onto one-node clusters or snapshots of the cluster's own
// root key, which followers keep: they stay unsealed.
func waitRestored(t *testing.T, c *e2eCluster, shares []string, leader *node) {
	t.Helper()
	testwait.Within(t, leaderWait, leader.nodeID+" to seal after the restore", func() bool {
		st, err := leader.client("").Sys().SealStatus()
		return err == nil && st.Sealed
	})
	leader.unseal(shares[0], shares[2])
	for _, n := range c.nodes {
		cl := n.client("")
		testwait.Within(t, leaderWait, n.nodeID+" to be unsealed after the restore", func() bool {
			st, err := cl.Sys().SealStatus()
			return err == nil && !st.Sealed
		})
	}
}

// checkRestored waits until the cluster serves the state of a restored
// snapshot of its own, taken when key decrypted ct to pt and before the
// key "later" was made, on every node.
func checkRestored(t *testing.T, c *e2eCluster, leader *node, key, ct, pt string) {
	t.Helper()
	waitRestored(t, c, c.shares, leader)
	for _, n := range c.nodes {
		cl := n.client(c.root)
		testwait.Within(t, leaderWait, n.nodeID+" to serve the restored state", func() bool {
			s, err := cl.Logical().Write("transit/decrypt/"+key, map[string]any{"ciphertext": ct})
			if err != nil || s == nil {
				return false
			}
			if got := mustDecodeB64(t, str(t, s.Data, "plaintext")); string(got) != pt {
				t.Fatalf("%s decrypts to %q after the restore, want %q", n.nodeID, got, pt)
			}
			// vault/api reads a 404 as no secret and no error.
			later, err := cl.Logical().Read("transit/keys/later")
			return err == nil && later == nil
		})
	}
}

// waitKey waits until n has the transit key name (a follower applies
// what the leader committed a moment later).
func waitKey(t *testing.T, n *node, token, name string) {
	t.Helper()
	c := n.client(token)
	testwait.Within(t, leaderWait, n.nodeID+" to have the key "+name, func() bool {
		_, err := c.Logical().Read("transit/keys/" + name)
		return err == nil
	})
}

// TestVaultAPISnapshot: the unmodified vault/api client saves snapshots
// of a 3-node cluster on its leader and on a follower, restores one on
// the same cluster (its sealed sums open there), is refused another
// cluster's without force, and restores it with force onto a fresh
// cluster, where the keys and their ciphertexts survive. An older raw
// snapshot still restores; a cut or altered archive does not.
func TestVaultAPISnapshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startCluster(t, clusterOpts{size: 3})
	la := a.leader()
	ca := la.client(a.root)
	write(t, ca, "transit/keys/kept", map[string]any{})
	ct := encrypt(t, ca, "kept", []byte("survives every restore"))
	follower := a.follower(la)
	cf := follower.client(a.root)
	waitKey(t, follower, a.root, "kept")
	vaultSave(t, ca, filepath.Join(dir, "leader.snap"))
	fromFollower := vaultSave(t, cf, filepath.Join(dir, "follower.snap"))
	os.WriteFile(filepath.Join(dir, "old.snap"), stateOf(t, fromFollower), 0o600)

	// A restore goes to the leader: a follower answers 503, never a
	// redirect (vault/api would report a redirected restore as done).
	if err := vaultRestore(cf, filepath.Join(dir, "follower.snap"), false); statusOf(err) != 503 {
		t.Fatalf("restore on a follower: %v, want a 503", err)
	}
	// Unforced on the same cluster: the follower's archive, then the raw
	// stream an older version saved.
	for _, file := range []string{"follower.snap", "old.snap"} {
		write(t, ca, "transit/keys/later", map[string]any{})
		if err := vaultRestore(ca, filepath.Join(dir, file), false); err != nil {
			t.Fatalf("vault/api RaftSnapshotRestore(%s, false): %v", file, err)
		}
		checkRestored(t, a, la, "kept", ct, "survives every restore")
	}

	b := startCluster(t, clusterOpts{size: 1})
	cb := b.leader().client(b.root)
	leaderSnap, _ := os.ReadFile(filepath.Join(dir, "leader.snap"))
	altered := bytes.Clone(leaderSnap)
	altered[len(altered)/2] ^= 1
	for name, c := range map[string]struct {
		body  []byte
		force bool
		want  string
	}{
		"another cluster's archive":          {leaderSnap, false, "another cluster"},
		"another cluster's old raw snapshot": {stateOf(t, leaderSnap), false, "another cluster"},
		"a cut archive":                      {leaderSnap[:len(leaderSnap)-100], true, "damaged"},
		"an archive cut in state.bin":        {leaderSnap[:len(leaderSnap)/2], true, "damaged"},
		"an altered archive":                 {altered, true, "damaged"},
	} {
		path := filepath.Join(dir, "refused.snap")
		os.WriteFile(path, c.body, 0o600)
		err := vaultRestore(cb, path, c.force)
		if statusOf(err) != 400 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a 400 with %q", name, err, c.want)
		}
	}
	if st, err := cb.Sys().SealStatus(); err != nil || st.Sealed {
		t.Fatalf("a refused restore sealed the node: %+v %v", st, err)
	}

	if err := vaultRestore(cb, filepath.Join(dir, "leader.snap"), true); err != nil {
		t.Fatalf("vault/api RaftSnapshotRestore(force): %v", err)
	}
	waitRestored(t, b, a.shares, b.nodes[0])
	cb = b.nodes[0].client(a.root)
	if got := decrypt(t, cb, "kept", ct); string(got) != "survives every restore" {
		t.Fatalf("decrypt on the fresh cluster: %q", got)
	}
	// b is now a's cluster: a's archive restores there unforced, and b's
	// own archives do too.
	bSnap := filepath.Join(dir, "b.snap")
	vaultSave(t, cb, bSnap)
	if err := vaultRestore(cb, bSnap, false); err != nil {
		t.Fatalf("unforced restore of the restored cluster's own archive: %v", err)
	}
	waitRestored(t, b, a.shares, b.nodes[0])
	if got := decrypt(t, cb, "kept", ct); string(got) != "survives every restore" {
		t.Fatalf("decrypt after the second restore: %q", got)
	}
	if v := read(t, cb, "sys/audit/verify"); !boolean(t, v, "valid") {
		t.Fatalf("audit after the restores: %v", v)
	}
}

// TestSnapshotCLIRoundTrip: the keyraft binary saves an archive from a
// follower and restores it; another cluster's is refused with the -force
// hint.
func TestSnapshotCLIRoundTrip(t *testing.T) {
	t.Parallel()
	a := startCluster(t, clusterOpts{size: 3})
	la := a.leader()
	write(t, la.client(a.root), "transit/keys/cli", map[string]any{})
	ct := encrypt(t, la.client(a.root), "cli", []byte("through the CLI"))
	follower := a.follower(la)
	waitKey(t, follower, a.root, "cli")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	file := filepath.Join(t.TempDir(), "backup.snap")
	if out, err := runCLI(ctx, follower.addr, a.root, "operator", "raft", "snapshot", "save", file); err != nil || !strings.Contains(out, "Saved a snapshot") {
		t.Fatalf("keyraft operator raft snapshot save: %v\n%s", err, out)
	}
	archive, _ := os.ReadFile(file)
	stateOf(t, archive)
	write(t, la.client(a.root), "transit/keys/later", map[string]any{})
	if out, err := runCLI(ctx, la.addr, a.root, "operator", "raft", "snapshot", "restore", file); err != nil || !strings.Contains(out, "Restored") {
		t.Fatalf("keyraft operator raft snapshot restore: %v\n%s", err, out)
	}
	checkRestored(t, a, la, "cli", ct, "through the CLI")

	b := startCluster(t, clusterOpts{size: 1})
	out, err := runCLI(ctx, b.leader().addr, b.root, "operator", "raft", "snapshot", "restore", file)
	if err == nil || !strings.Contains(out, "another cluster") || !strings.Contains(out, "-force") {
		t.Fatalf("CLI restore of another cluster's snapshot: %v\n%s", err, out)
	}
}

// baoBin is the OpenBao CLI the bao tests drive: $KEYRAFT_BAO, else bao
// on PATH, else none (the tests skip).
func baoBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KEYRAFT_BAO"); p != "" {
		return p
	}
	p, err := exec.LookPath("bao")
	if err != nil {
		t.Skip("no bao binary: set KEYRAFT_BAO or put bao on PATH")
	}
	return p
}

// runBao runs the bao CLI against n with token and returns its combined
// output.
func runBao(ctx context.Context, bin string, n *node, token string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(),
		"BAO_ADDR=" + n.addr, "BAO_TOKEN=" + token, "VAULT_ADDR=" + n.addr, "VAULT_TOKEN=" + token}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestBaoSnapshot: `bao operator raft snapshot save` and `restore`
// against keyraft: unforced on the same cluster, refused for another
// cluster without -force, then forced onto it, where the data survives;
// and bao restores what keyraft's CLI saved.
func TestBaoSnapshot(t *testing.T) {
	bao := baoBin(t)
	t.Parallel()
	dir := t.TempDir()
	a := startCluster(t, clusterOpts{size: 1})
	la := a.nodes[0]
	write(t, la.client(a.root), "transit/keys/bao", map[string]any{})
	ct := encrypt(t, la.client(a.root), "bao", []byte("through bao"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	file := filepath.Join(dir, "bao.snap")
	if out, err := runBao(ctx, bao, la, a.root, "operator", "raft", "snapshot", "save", file); err != nil {
		t.Fatalf("bao operator raft snapshot save: %v\n%s", err, out)
	}
	archive, _ := os.ReadFile(file)
	stateOf(t, archive)
	write(t, la.client(a.root), "transit/keys/later", map[string]any{})
	if out, err := runBao(ctx, bao, la, a.root, "operator", "raft", "snapshot", "restore", file); err != nil {
		t.Fatalf("bao operator raft snapshot restore: %v\n%s", err, out)
	}
	checkRestored(t, a, la, "bao", ct, "through bao")
	cliFile := filepath.Join(dir, "cli.snap")
	if out, err := runCLI(ctx, la.addr, a.root, "operator", "raft", "snapshot", "save", cliFile); err != nil {
		t.Fatalf("keyraft operator raft snapshot save: %v\n%s", err, out)
	}

	b := startCluster(t, clusterOpts{size: 1})
	lb := b.nodes[0]
	if out, err := runBao(ctx, bao, lb, b.root, "operator", "raft", "snapshot", "restore", file); err == nil || !strings.Contains(out, "another cluster") {
		t.Fatalf("unforced bao restore of another cluster's snapshot: %v\n%s", err, out)
	}
	if out, err := runBao(ctx, bao, lb, b.root, "operator", "raft", "snapshot", "restore", "-force", cliFile); err != nil {
		t.Fatalf("bao operator raft snapshot restore -force of keyraft's file: %v\n%s", err, out)
	}
	waitRestored(t, b, a.shares, lb)
	if got := decrypt(t, lb.client(a.root), "bao", ct); string(got) != "through bao" {
		t.Fatalf("decrypt on the other cluster after the bao restore: %q", got)
	}
}
