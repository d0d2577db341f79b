package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyraft/keyraft/cluster/snapfile"
	"github.com/keyraft/keyraft/cluster/snapfile/snapfiletest"
)

func TestIntegrationAudit(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "app")
	s.ok(t, []byte("hello"), "encrypt", "app")
	s.ok(t, nil, "keys", "rotate", "app")
	if _, _, code := s.kr(t, map[string]string{"KEYRAFT_TOKEN": "kr.wrong"}, []byte("x"), "encrypt", "app"); code != 1 {
		t.Fatalf("bad token encrypt exit %d", code)
	}

	tail := string(s.ok(t, nil, "audit", "tail", "-n", "50"))
	for _, want := range []string{"transit/keys allowed 200 key=app", "transit/encrypt allowed 200 key=app@v1", "transit/encrypt denied 403"} {
		if !strings.Contains(tail, want) {
			t.Errorf("audit tail lacks %q:\n%s", want, tail)
		}
	}
	hist := strings.Split(strings.TrimSpace(string(s.ok(t, nil, "audit", "history", "app"))), "\n")
	if len(hist) != 2 {
		t.Fatalf("history of app: %q", hist)
	}
	denied := s.ok(t, nil, "audit", "query", "-format=json", "-outcome=denied")
	var e map[string]any
	if err := json.Unmarshal([]byte(strings.Split(string(denied), "\n")[0]), &e); err != nil || e["operation"] != "transit/encrypt" {
		t.Fatalf("query -outcome=denied: %s", denied)
	}

	// The plaintext "hello" (sent as base64 aGVsbG8=) is findable by its HMAC.
	h := strings.TrimSpace(string(s.ok(t, nil, "audit", "hash", "aGVsbG8=")))
	all := string(s.ok(t, nil, "audit", "query", "-format=json", "-limit=1000"))
	if !strings.Contains(all, h) || strings.Contains(all, "aGVsbG8=") {
		t.Fatalf("audit log: HMAC present %v, plaintext present %v", strings.Contains(all, h), strings.Contains(all, "aGVsbG8="))
	}

	file := filepath.Join(t.TempDir(), "audit.jsonl")
	s.kr(t, nil, nil, "audit", "export", "-o", file)
	out, errOut, code := s.kr(t, nil, nil, "audit", "verify", "-file", file)
	if code != 0 || !strings.HasPrefix(string(out), "ok: ") {
		t.Fatalf("verify intact export: exit %d %s %s", code, out, errOut)
	}
	if out, _, code := s.kr(t, nil, nil, "audit", "verify"); code != 0 {
		t.Fatalf("verify the live log: exit %d %s", code, out)
	}

	// Each kind of tampering is caught and named.
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	tamper := func(name string, ls []string, wantSeq string) {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o600)
		_, errOut, code := s.kr(t, nil, nil, "audit", "verify", "-file", p)
		if code != 1 {
			t.Errorf("%s: exit %d", name, code)
		}
		checkErrorLines(t, name, errOut, "audit log tampered: seq "+wantSeq, "verified")
	}
	edited := append([]string(nil), lines...)
	edited[2] = strings.Replace(edited[2], `"status":200`, `"status":201`, 1)
	tamper("edited", edited, "2:")
	tamper("deleted", append(append([]string(nil), lines[:2]...), lines[3:]...), "2:")
	swapped := append([]string(nil), lines...)
	swapped[2], swapped[3] = swapped[3], swapped[2]
	tamper("swapped", swapped, "2:")
	tamper("truncated", lines[:len(lines)-3], "")

	_, errOut, code = s.kr(t, nil, nil, "audit", "verify", "-file", filepath.Join(t.TempDir(), "missing"))
	if code != 1 {
		t.Fatalf("missing file: exit %d", code)
	}
	checkErrorLines(t, "missing file", errOut, "no such file", "keyraft audit export")
	// Compaction after the export leaves a log that still verifies.
	if out, errOut, code := s.kr(t, nil, nil, "audit", "compact"); code != 0 || !strings.HasPrefix(string(out), "Success!") {
		t.Fatalf("audit compact: exit %d %s %s", code, out, errOut)
	}
	if out, _, code := s.kr(t, nil, nil, "audit", "verify"); code != 0 {
		t.Fatalf("verify after compaction: exit %d %s", code, out)
	}
	_, errOut, code = s.kr(t, nil, nil, "audit", "export")
	if code != 2 || !strings.Contains(errOut, "missing -o FILE") {
		t.Fatalf("export without -o: exit %d %q", code, errOut)
	}
}

func TestIntegrationRaftListPeers(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	out := string(s.ok(t, nil, "operator", "raft", "list-peers"))
	if !strings.Contains(out, "dev-node") || !strings.Contains(out, "leader") || !strings.Contains(out, "true") {
		t.Fatalf("list-peers:\n%s", out)
	}
	_, errOut, code := s.kr(t, nil, nil, "operator", "raft")
	if code != 2 || !strings.Contains(errOut, "operator raft commands: list-peers") {
		t.Fatalf("operator raft without a command: exit %d %q", code, errOut)
	}
}

func TestIntegrationSnapshotSaveRestore(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "app")
	ct := strings.TrimSpace(string(s.ok(t, []byte("kept"), "encrypt", "app")))
	file := filepath.Join(t.TempDir(), "backup.snap")
	if _, errOut, code := s.kr(t, nil, nil, "operator", "raft", "snapshot", "save", file); code != 0 || !strings.Contains(errOut, "Saved a snapshot") {
		t.Fatalf("snapshot save: exit %d %q", code, errOut)
	}
	archive, err := os.ReadFile(file)
	if err != nil || !snapfile.IsArchive(archive) {
		t.Fatalf("the saved file is not an archive: %v", err)
	}
	// An older version saved the raw stream alone: state.bin.
	rawFile := filepath.Join(t.TempDir(), "old.snap")
	os.WriteFile(rawFile, snapfiletest.Body(t, archive, snapfile.StateName), 0o600)
	s.ok(t, nil, "keys", "create", "later")
	out, errOut, code := s.kr(t, nil, nil, "operator", "raft", "snapshot", "restore", rawFile)
	if code != 0 || !strings.Contains(string(out), "Restored") {
		t.Fatalf("restore of an older version's raw snapshot: exit %d %s %s", code, out, errOut)
	}
	s.ok(t, []byte(s.unsealKey), "operator", "unseal")
	if _, errOut, code := s.kr(t, nil, nil, "keys", "read", "later"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("a key made after the raw snapshot survived its restore: exit %d %q", code, errOut)
	}
	s.ok(t, nil, "keys", "create", "later")
	cut := filepath.Join(t.TempDir(), "cut.snap")
	os.WriteFile(cut, archive[:len(archive)-10], 0o600)
	_, errOut, code = s.kr(t, nil, nil, "operator", "raft", "snapshot", "restore", cut)
	if code != 1 || !strings.Contains(errOut, "damaged") {
		t.Fatalf("restore of a cut archive: exit %d %q", code, errOut)
	}
	out, errOut, code = s.kr(t, nil, nil, "operator", "raft", "snapshot", "restore", file)
	if code != 0 || !strings.Contains(string(out), "Restored") {
		t.Fatalf("snapshot restore: exit %d %s %s", code, out, errOut)
	}
	if _, _, code := s.kr(t, nil, nil, "status"); code != 2 {
		t.Fatalf("status after restore: exit %d, want 2 (sealed)", code)
	}
	s.ok(t, []byte(s.unsealKey), "operator", "unseal")
	if got := s.ok(t, []byte(ct), "decrypt", "app"); string(got) != "kept" {
		t.Fatalf("decrypt after restore: %q", got)
	}
	if _, errOut, code := s.kr(t, nil, nil, "keys", "read", "later"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("a key made after the snapshot survived its restore: exit %d %q", code, errOut)
	}
	os.WriteFile(file, []byte("garbage"), 0o600)
	_, errOut, code = s.kr(t, nil, nil, "operator", "raft", "snapshot", "restore", file)
	if code != 1 || !strings.HasPrefix(errOut, "error: ") {
		t.Fatalf("restore of garbage: exit %d %q", code, errOut)
	}
}

// snapshot save checks what the server streams: an archive, or an older
// server's raw stream, whole and sound, or no file.
func TestIntegrationSnapshotSaveChecksTheStream(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	file := filepath.Join(t.TempDir(), "backup.snap")
	s.ok(t, nil, "keys", "create", "app")
	if _, errOut, code := s.kr(t, nil, nil, "operator", "raft", "snapshot", "save", file); code != 0 {
		t.Fatalf("snapshot save: exit %d %q", code, errOut)
	}
	archive, _ := os.ReadFile(file)
	raw := snapfiletest.Body(t, archive, snapfile.StateName)
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sys/storage/raft/snapshot" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	for _, c := range []struct {
		name string
		body []byte
		ok   bool
	}{
		{"an archive", archive, true},
		{"an older server's raw stream", raw, true},
		{"a cut archive", archive[:len(archive)-100], false},
		{"an archive cut in state.bin", archive[:len(archive)/2], false},
		{"an archive without its gzip trailer", archive[:len(archive)-8], false},
		{"a cut raw stream", raw[:len(raw)-1], false},
		{"an archive with data after it", append(bytes.Clone(archive), 0), false},
		{"an archive without SHA256SUMS.sealed", snapfiletest.Rewrite(t, archive, func(name string, body []byte) []byte {
			if name == snapfile.SealedName {
				return nil
			}
			return body
		}), false},
		{"something else", []byte("<html>"), false},
	} {
		body = c.body
		out := filepath.Join(t.TempDir(), "out.snap")
		_, errOut, code := s.kr(t, map[string]string{"KEYRAFT_ADDR": srv.URL}, nil, "operator", "raft", "snapshot", "save", out)
		got, rerr := os.ReadFile(out)
		switch {
		case c.ok && (code != 0 || !bytes.Equal(got, c.body)):
			t.Errorf("%s: exit %d %q; file %d bytes of %d", c.name, code, errOut, len(got), len(c.body))
		case !c.ok && (code != 1 || !strings.Contains(errOut, "incomplete or damaged") || !os.IsNotExist(rerr)):
			t.Errorf("%s: exit %d %q; file: %v", c.name, code, errOut, rerr)
		}
	}
}
