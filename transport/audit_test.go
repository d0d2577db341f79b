package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/audit"
)

func events(t *testing.T, r resp) []map[string]any {
	t.Helper()
	l, _ := r.data()["events"].([]any)
	out := make([]map[string]any, len(l))
	for i, v := range l {
		out[i], _ = v.(map[string]any)
	}
	return out
}

func TestAuditLogRecordsEveryRequestOnceWithoutSecrets(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.createKey("app", nil)
	plaintext := base64.StdEncoding.EncodeToString([]byte("very secret payload 41f7"))
	ct := h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": plaintext}).str("ciphertext")
	h.must(200, "POST", "transit/decrypt/app", map[string]any{"ciphertext": ct})
	h.must(200, "POST", "transit/keys/app/rotate", nil)
	h.must(200, "POST", "transit/keys/app/config", map[string]any{"deletion_allowed": true})
	denied := h.doWith("POST", "transit/encrypt/app", map[string]any{"plaintext": plaintext}, map[string]string{"X-Vault-Token": "kr.wrong"})
	if denied.status != 403 {
		t.Fatalf("bad token: %d", denied.status)
	}
	h.must(400, "POST", "transit/decrypt/app", `{"ciphertext":`)

	all := h.must(200, "GET", "sys/audit/events?limit=1000", nil)
	raw := string(all.raw)
	for _, secret := range []string{plaintext, ct, rootToken, "kr.wrong"} {
		if strings.Contains(raw, secret) {
			t.Fatalf("the audit log holds a secret in the clear: %q", secret)
		}
	}
	evs := events(t, all)
	byOp := map[string]int{}
	for _, e := range evs {
		byOp[e["operation"].(string)+"/"+e["outcome"].(string)]++
	}
	for op, want := range map[string]int{
		"transit/encrypt/allowed": 1, "transit/encrypt/denied": 1, "transit/decrypt/allowed": 1,
		"transit/decrypt/error": 1, "transit/keys/allowed": 3,
	} {
		if byOp[op] != want {
			t.Errorf("%s: %d events, want %d (all: %v)", op, byOp[op], want, byOp)
		}
	}

	// The plaintext appears as an HMAC an investigator can reproduce.
	h2 := h.must(200, "POST", "sys/audit/hash", map[string]any{"input": plaintext}).str("hash")
	found := false
	for _, e := range evs {
		if m, ok := e["hmacs"].(map[string]any); ok && m["plaintext"] == h2 {
			found = e["operation"] == "transit/encrypt"
		}
	}
	if !found || !strings.HasPrefix(h2, "hmac-sha256:") {
		t.Fatalf("no encrypt event carries the plaintext's HMAC %q", h2)
	}

	// History: the key's state changes, committed with the changes.
	hist := events(t, h.must(200, "GET", "sys/audit/history/app", nil))
	if len(hist) != 3 {
		t.Fatalf("history has %d events, want create, rotate, config", len(hist))
	}
	for _, e := range hist {
		if e["state_change"] != true || e["key"] != "app" {
			t.Fatalf("history event %v", e)
		}
	}

	v := h.must(200, "GET", "sys/audit/verify", nil).data()
	if v["valid"] != true {
		t.Fatalf("verify: %v", v)
	}

	// Filters and paging.
	q := h.must(200, "GET", "sys/audit/events?operation=transit/encrypt&outcome=denied", nil)
	if n := len(events(t, q)); n != 1 {
		t.Fatalf("denied encrypts: %d", n)
	}
	page := h.must(200, "GET", "sys/audit/events?limit=2", nil)
	if n := len(events(t, page)); n != 2 || page.data()["next_seq"].(float64) != 3 {
		t.Fatalf("page: %d events, next %v", n, page.data()["next_seq"])
	}
	h.must(400, "GET", "sys/audit/events?limit=0", nil)
	h.must(400, "GET", "sys/audit/events?since=yesterday", nil)
	h.must(400, "GET", "sys/audit/events?outcome=maybe", nil)
	if r := h.doWith("GET", "sys/audit/events", nil, map[string]string{"X-Vault-Token": "kr.wrong"}); r.status != 403 {
		t.Fatalf("audit read with a bad token: %d", r.status)
	}
}

func getRaw(t *testing.T, h *harness, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL+"/v1/"+path, nil)
	req.Header.Set("X-Vault-Token", h.token)
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func TestAuditExportVerifiesAndCatchesTampering(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.createKey("app", nil)
	for i := 0; i < 20; i++ {
		h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": "aGk="})
	}
	res, body := getRaw(t, h, "sys/audit/export")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %s", res.StatusCode, body)
	}
	pub, _ := base64.StdEncoding.DecodeString(h.must(200, "GET", "sys/audit/public-key", nil).str("public_key"))
	rep, err := audit.VerifyExport(bytes.NewReader(body), pub)
	if err != nil || rep.Events < 21 || rep.Checkpoints < 1 || rep.FirstSeq != 1 {
		t.Fatalf("export verify: %+v %v", rep, err)
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	edited := append([]string(nil), lines...)
	edited[5] = strings.Replace(edited[5], `"outcome":"allowed"`, `"outcome":"denied"`, 1)
	_, err = audit.VerifyExport(strings.NewReader(strings.Join(edited, "\n")), pub)
	var p *audit.Problem
	if !errors.As(err, &p) || p.Seq != 5 {
		t.Fatalf("edited line 5 (seq 5): %v", err)
	}

	// A slice of the log verifies from its first event's prev_hash.
	// A slice ends on the newest signed checkpoint at or below to_seq.
	cpSeq := int(h.must(200, "POST", "sys/audit/checkpoint", nil).data()["seq"].(float64))
	h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": "aGk="})
	r, part := getRaw(t, h, fmt.Sprintf("sys/audit/export?from_seq=3&to_seq=%d", cpSeq+1))
	rep, err = audit.VerifyExport(bytes.NewReader(part), pub)
	if r.StatusCode != 200 || err != nil || rep.FirstSeq != 3 || rep.LastSeq != uint64(cpSeq) {
		t.Fatalf("partial export: %d %+v %v", r.StatusCode, rep, err)
	}
	if r, _ := getRaw(t, h, "sys/audit/export?to_seq=18446744073709551615"); r.StatusCode != 400 {
		t.Fatalf("to_seq past the head: %d", r.StatusCode)
	}
	if r, _ := getRaw(t, h, "sys/audit/export?from_seq=9&to_seq=3"); r.StatusCode != 400 {
		t.Fatalf("reversed range: %d", r.StatusCode)
	}
}

func TestAuditStreamFollows(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel() // bounds the read below: a silent stream fails the test
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/v1/sys/audit/stream?from_seq=1", nil)
	req.Header.Set("X-Vault-Token", h.token)
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	var last uint64
	go func() {
		// Events made after the stream started arrive on it.
		h.createKey("streamed", nil)
	}()
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != last+1 {
			t.Fatalf("stream jumped from %d to %d", last, e.Seq)
		}
		last = e.Seq
		if e.Key == "streamed" && e.StateChange {
			return
		}
	}
	t.Fatalf("the stream never delivered the key creation (last seq %d)", last)
}

func TestAutoRotationIsAnAuditedStateChange(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.createKey("hourly", map[string]any{"auto_rotate_period": "1h"})
	later := time.Now().Add(2 * time.Hour)
	h.engine.Now = func() time.Time { return later }
	if n, err := h.engine.RotateDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("RotateDue: %d, %v", n, err)
	}
	hist := events(t, h.must(200, "GET", "sys/audit/history/hourly", nil))
	if len(hist) != 2 || hist[1]["operation"] != "transit/auto-rotate" || hist[1]["node"] != "n1" || hist[1]["identity"] != "keyraft" {
		t.Fatalf("history: %v", hist)
	}
	if v := h.keyInfo("hourly")["latest_version"]; v != float64(2) {
		t.Fatalf("latest_version %v", v)
	}
}

func TestAuditCompactionKeepsTheRestVerifiable(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	h.createKey("app", nil)
	for i := 0; i < 10; i++ {
		h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": "aGk="})
	}
	cp := h.must(200, "POST", "sys/audit/checkpoint", nil).data()
	at := int(cp["seq"].(float64))
	if r := h.do("POST", "sys/audit/compact", map[string]any{"up_to_seq": at - 1}); r.status != 400 || !strings.Contains(r.errs()[0], "no signed checkpoint") {
		t.Fatalf("compaction without a checkpoint there: %d %v", r.status, r.errs())
	}
	for i := 0; i < 5; i++ {
		h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": "aGk="})
	}
	done := h.must(200, "POST", "sys/audit/compact", map[string]any{"up_to_seq": at}).data()
	if int(done["compacted_to"].(float64)) != at {
		t.Fatalf("compacted to %v, want %d", done["compacted_to"], at)
	}
	first := events(t, h.must(200, "GET", "sys/audit/events?limit=1", nil))
	if len(first) != 1 || int(first[0]["seq"].(float64)) != at+1 {
		t.Fatalf("first event after compaction: %v", first)
	}
	if v := h.must(200, "GET", "sys/audit/verify", nil).data(); v["valid"] != true {
		t.Fatalf("verify after compaction: %v", v)
	}
	pub, _ := base64.StdEncoding.DecodeString(h.must(200, "GET", "sys/audit/public-key", nil).str("public_key"))
	_, body := getRaw(t, h, "sys/audit/export")
	rep, err := audit.VerifyExport(bytes.NewReader(body), pub)
	if err != nil || rep.FirstSeq != uint64(at+1) {
		t.Fatalf("export after compaction: %+v %v", rep, err)
	}
	// The export opens with its anchor checkpoint; a forged anchor fails.
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if !strings.HasPrefix(lines[1], `{"checkpoint":`) {
		t.Fatalf("export does not start with its anchor checkpoint: %.80s", lines[1])
	}
	i := strings.Index(lines[1], `"signature":"`) + len(`"signature":"`)
	flipped := byte('A')
	if lines[1][i] == 'A' {
		flipped = 'B'
	}
	lines[1] = lines[1][:i] + string(flipped) + lines[1][i+1:]
	if _, err := audit.VerifyExport(strings.NewReader(strings.Join(lines, "\n")), pub); err == nil {
		t.Fatal("an export with a forged anchor checkpoint verified")
	}
	if r := h.do("POST", "sys/audit/compact", map[string]any{"up_to_seq": at}); r.status != 400 {
		t.Fatalf("compacting again to the same seq: %d", r.status)
	}
}

// TestAuditDocDeviceRequest sends the device request of docs/audit.md
// (the JSON after -d) and reads the device back.
func TestAuditDocDeviceRequest(t *testing.T) {
	b, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "-d '")
	if !ok {
		t.Fatal("no curl -d request in docs/audit.md")
	}
	body, _, _ := strings.Cut(rest, "'")
	h := newHarness(t, harnessOpts{})
	h.must(204, "PUT", "sys/audit/collector", body)
	d := h.must(200, "GET", "sys/audit/collector", nil).data()
	opts := d["options"].(map[string]any)
	if d["type"] != "socket" || opts["framing"] != "acked" || opts["write_timeout"] != "10s" || d["local"] != false {
		t.Fatalf("the documented device reads back as %v", d)
	}
	h.must(400, "PUT", "sys/audit/bad", `{"type":"socket","options":{"address":"x:1","framing":"acked","socket_type":"udp"}}`)
	h.must(400, "PUT", "sys/audit/bad", `{"type":"socket","options":{"address":"x:1","write_timeout":"forever"}}`)
}
