package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/cluster/snapfile"
	"github.com/keyraft/keyraft/cluster/snapfile/snapfiletest"
	"github.com/keyraft/keyraft/fsm"
)

// snapshotReq sends body to path (GET when nil) as it is and returns the
// status, headers and body of the answer.
func (h *harness) snapshotReq(path string, body []byte) (int, http.Header, []byte) {
	h.t.Helper()
	method, rd := "GET", io.Reader(nil)
	if body != nil {
		method, rd = "POST", bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+"/v1/"+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", h.token)
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return res.StatusCode, res.Header, b
}

func (h *harness) saveArchive() []byte {
	h.t.Helper()
	code, hdr, b := h.snapshotReq("sys/storage/raft/snapshot", nil)
	if code != 200 || hdr.Get("Content-Type") != "application/gzip" || hdr.Get("Content-Encoding") != "" {
		h.t.Fatalf("snapshot save: %d %v", code, hdr)
	}
	return b
}

// restore posts a snapshot and, when it was taken (204), unseals the node
// with key (the restore seals it) and waits until it serves again.
func (h *harness) restore(path string, snap, key []byte, want int, wantText string) {
	h.t.Helper()
	code, _, body := h.snapshotReq(path, snap)
	if code != want || !strings.Contains(string(body), wantText) {
		h.t.Fatalf("POST %s: %d %s, want %d with %q", path, code, body, want, wantText)
	}
	if code != 204 {
		return
	}
	if !h.node.Sealed() {
		h.t.Fatal("not sealed after a restore")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if st, err := h.node.Unseal(ctx, key); err != nil || st.Sealed {
		h.t.Fatalf("unseal after the restore: %+v %v", st, err)
	}
}

// GET sys/storage/raft/snapshot is a Vault-shaped archive: the vault/api
// client takes it, its state is the state machine's stream, and its
// sealed sums open with the node's keyring.
func TestSnapshotSaveIsAnArchive(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("app", nil)
	b := h.saveArchive()
	var state bytes.Buffer
	arc, err := snapfile.Read(bytes.NewReader(b), MaxSnapshotSize, func(r io.Reader) error {
		_, err := io.Copy(&state, r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsm.ValidateSnapshot(bytes.NewReader(state.Bytes())); err != nil {
		t.Fatalf("state.bin: %v", err)
	}
	sums, err := h.node.OpenSnapshotSums(arc.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	if err := arc.Verify(sums); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sums, snapfiletest.Body(t, b, snapfile.SumsName)) {
		t.Fatal("the sealed sums are not SHA256SUMS")
	}

	c := vaultClient(t, h.srv.URL, h.token)
	var got bytes.Buffer
	if err := c.Sys().RaftSnapshot(&got); err != nil {
		t.Fatalf("vault/api RaftSnapshot: %v", err)
	}
	if !snapfile.IsArchive(got.Bytes()) {
		t.Fatal("vault/api saved something else than the archive")
	}
	if err := c.Sys().RaftSnapshotRestore(bytes.NewReader(got.Bytes()), false); err != nil {
		t.Fatalf("vault/api RaftSnapshotRestore: %v", err)
	}
	if !h.node.Sealed() {
		t.Fatal("not sealed after the vault/api restore")
	}
}

// Restores take archives (sealed by this cluster unless forced) and the
// raw stream of older versions, and refuse everything else with a reason.
func TestSnapshotRestoreFormats(t *testing.T) {
	a := newHarness(t, harnessOpts{})
	b := newHarness(t, harnessOpts{})
	a.createKey("app", nil)
	pt := base64.StdEncoding.EncodeToString([]byte("kept"))
	ct := a.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": pt}).str("ciphertext")
	snapA := a.saveArchive()
	var rawA bytes.Buffer
	if err := a.node.SaveSnapshot(&rawA); err != nil {
		t.Fatal(err)
	}
	snapB := b.saveArchive()
	const save, force = "sys/storage/raft/snapshot", "sys/storage/raft/snapshot-force"

	// Refused, on a's node, before anything is restored.
	for _, c := range []struct {
		name, path string
		body       []byte
		text       string
	}{
		{"garbage", force, []byte("garbage"), "not a keyraft snapshot: expected a snapshot archive"},
		{"empty", force, []byte{}, "not a keyraft snapshot"},
		{"another cluster's archive", save, snapB, "another cluster"},
		{"another cluster's sealed sums", save, snapfiletest.Rewrite(t, snapA, func(name string, body []byte) []byte {
			if name == snapfile.SealedName {
				return snapfiletest.Body(t, snapB, name)
			}
			return body
		}), "another cluster"},
		{"no sealed sums", save, snapfiletest.Rewrite(t, snapA, func(name string, body []byte) []byte {
			if name == snapfile.SealedName {
				return nil
			}
			return body
		}), "another cluster"},
		{"a record altered, SHA256SUMS to match", save, func() []byte {
			var state []byte
			altered := snapfiletest.Rewrite(t, snapA, func(name string, body []byte) []byte {
				if name == snapfile.StateName {
					body = bytes.Clone(body)
					body[len(body)-20] ^= 1
					state = body
				}
				return body
			})
			meta := snapfiletest.Body(t, altered, snapfile.MetaName)
			return snapfiletest.Rewrite(t, altered, func(name string, body []byte) []byte {
				if name == snapfile.SumsName {
					return sums(meta, state)
				}
				return body
			})
		}(), "another cluster, or was altered"},
		{"state.bin altered", force, snapfiletest.Rewrite(t, snapA, func(name string, body []byte) []byte {
			if name == snapfile.StateName {
				body = bytes.Clone(body)
				body[30] ^= 1
			}
			return body
		}), "SHA-256 of state.bin does not match"},
		{"cut in state.bin", force, snapA[:len(snapA)/2], "damaged"},
		{"cut before the gzip trailer", force, snapA[:len(snapA)-4], "damaged"},
		{"an extra file", force, snapfiletest.Rewrite(t, snapA, func(name string, body []byte) []byte {
			if name == snapfile.SumsName {
				return append(body, strings.Repeat("0", 64)+"  extra\n"...)
			}
			return body
		}), "unknown file"},
		{"a cut raw stream", force, rawA.Bytes()[:rawA.Len()-1], "damaged"},
		{"another cluster's raw stream", save, func() []byte {
			var raw bytes.Buffer
			if err := b.node.SaveSnapshot(&raw); err != nil {
				t.Fatal(err)
			}
			return raw.Bytes()
		}(), "another cluster"},
	} {
		code, _, body := a.snapshotReq(c.path, c.body)
		if code != 400 || !strings.Contains(string(body), c.text) {
			t.Errorf("%s: %d %s, want 400 with %q", c.name, code, body, c.text)
		}
		if a.node.Sealed() {
			t.Fatalf("%s: the node sealed: something was restored", c.name)
		}
	}

	a.restore(save, snapA, a.unsealKey, 204, "")
	if d := a.audit.last().Details; d["snapshot_format"] != "archive" || d["replaced_audit_head_seq"] == "" {
		t.Errorf("the restore's event details: %v", d)
	}
	a.restore(save, rawA.Bytes(), a.unsealKey, 204, "")
	if d := a.audit.last().Details; d["snapshot_format"] != "raw" {
		t.Errorf("the raw restore's event details: %v", d)
	}
	if got := a.must(200, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}).str("plaintext"); got != pt {
		t.Fatalf("decrypt after the restores: %q", got)
	}

	// Onto b: forced, then b is a's cluster and the same archive restores
	// unforced.
	b.restore(force, snapA, a.unsealKey, 204, "")
	if got := b.must(200, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct}).str("plaintext"); got != pt {
		t.Fatalf("decrypt on the other node: %q", got)
	}
	b.restore(save, snapA, a.unsealKey, 204, "")
}

// sums is a SHA256SUMS of meta.json and state.bin.
func sums(meta, state []byte) []byte {
	return fmt.Appendf(nil, "%x  %s\n%x  %s\n", sha256.Sum256(meta), snapfile.MetaName, sha256.Sum256(state), snapfile.StateName)
}

// faultySnapshots is a real node whose snapshot stream breaks after
// breakAfter bytes (when > 0) or whose keyring refuses to seal the sums.
type faultySnapshots struct {
	*cluster.Node
	breakAfter int64
	sealFails  bool
}

func (f *faultySnapshots) OpenSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := f.Node.OpenSnapshot()
	if err != nil || f.breakAfter == 0 {
		return meta, rc, err
	}
	return meta, struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, f.breakAfter), iotest.ErrReader(errors.New("disk gone"))), rc}, nil
}

func (f *faultySnapshots) SealSnapshotSums(sums []byte) ([]byte, error) {
	if f.sealFails {
		return nil, cluster.ErrSealed
	}
	return f.Node.SealSnapshotSums(sums)
}

// A save that fails once the answer has begun aborts the connection: the
// client sees a broken transfer, never a whole-looking archive.
func TestSnapshotSaveAbortsOnFailure(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, f := range []*faultySnapshots{{Node: h.node, breakAfter: 100}, {Node: h.node, sealFails: true}} {
		api, err := NewAPI(Config{Node: f, Transit: h.engine, Audit: h.audit, APIAddr: "http://127.0.0.1:8200"})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(api)
		c := vaultClient(t, srv.URL, h.token)
		var got bytes.Buffer
		if err := c.Sys().RaftSnapshot(&got); err == nil {
			t.Errorf("%+v: vault/api RaftSnapshot succeeded on a broken stream", f)
		}
		if _, err := snapfile.Read(bytes.NewReader(got.Bytes()), MaxSnapshotSize, func(r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		}); err == nil {
			t.Errorf("%+v: what the client got reads as a whole archive", f)
		}
		srv.Close()
	}
}
