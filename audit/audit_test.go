package audit

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestEncodeHasACeiling: whatever a request put into its event (a 100 KiB
// method, path, key name, error, identity, details and a huge batch of
// HMACs), the encoded event fits MaxEventSize and still decodes, so the
// request is recorded rather than refused, and a stranger's request costs
// the replicated log a few KiB at most.
func TestEncodeHasACeiling(t *testing.T) {
	long := strings.Repeat("é", 50<<10) // 100 KiB, two bytes a rune
	e := &Event{
		RequestID: long, Node: long, Identity: long, RemoteAddr: long, Operation: long,
		Method: long, Path: "/v1/sys/" + long, Key: long, Outcome: long, Error: long,
		Details: map[string]string{}, HMACs: map[string]string{},
	}
	for i := 0; i < 200; i++ {
		e.Details[long[:i+10]] = long
	}
	for i := 0; i < 20000; i++ {
		e.HMACs["batch_input["+strconv.Itoa(i)+"].plaintext"] = "hmac-sha256:" + strings.Repeat("ab", 32)
	}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxEventSize {
		t.Fatalf("encoded event is %d bytes, the ceiling is %d", len(b), MaxEventSize)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("the shrunk event does not decode: %v", err)
	}
	if !strings.HasPrefix(got.Path, "/v1/sys/éé") || len(got.Path) > MaxPathInEvent+len("…") || !utf8.ValidString(got.Path) {
		t.Fatalf("path kept as %d bytes (valid UTF-8: %v)", len(got.Path), utf8.ValidString(got.Path))
	}
	for name, v := range map[string]string{"method": got.Method, "operation": got.Operation, "key": got.Key, "error": got.Error, "identity": got.Identity} {
		if v == "" || len(v) > maxErrorInEvent+len("…") || !utf8.ValidString(v) {
			t.Fatalf("%s kept as %d bytes", name, len(v))
		}
	}
	if len(got.Details) > maxDetails+1 || got.Details["truncated"] != "168" {
		t.Fatalf("details: %d entries, truncated=%q", len(got.Details), got.Details["truncated"])
	}
	if len(got.HMACs) != 1 || !strings.HasPrefix(got.HMACs["batch_input[*].plaintext"], "sha256-of-20000-hmacs:") {
		t.Fatalf("hmacs not summarized: %d entries", len(got.HMACs))
	}

	// An ordinary event is kept as it is.
	small := &Event{Operation: "transit/encrypt", Method: "POST", Path: "/v1/transit/encrypt/app", Key: "app",
		Details: map[string]string{"policy": "p"}, HMACs: map[string]string{"plaintext": "hmac-sha256:aa"}}
	b, _ = small.Encode()
	if got, _ := Decode(b); got == nil || got.Path != small.Path || got.Details["policy"] != "p" || got.HMACs["plaintext"] != "hmac-sha256:aa" {
		t.Fatalf("an ordinary event changed: %s", b)
	}
}

// TestEncodeCeilingWithEscapes: text that JSON escapes six-fold (control
// characters, invalid UTF-8) still fits the ceiling.
func TestEncodeCeilingWithEscapes(t *testing.T) {
	esc := strings.Repeat("\x01\xff<", 40<<10)
	e := &Event{RequestID: esc, Node: esc, Identity: esc, RemoteAddr: esc, Operation: esc,
		Method: esc, Path: esc, Key: esc, Outcome: esc, Error: esc, Details: map[string]string{}}
	for i := 0; i < 40; i++ {
		e.Details[strconv.Itoa(i)] = esc
	}
	b, err := e.Encode()
	if err != nil || len(b) > MaxEventSize {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
}
