package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// chainOf builds n correctly chained events, as the state machine would.
func chainOf(t testing.TB, n int) []*Event {
	t.Helper()
	prev := GenesisHash
	var out []*Event
	for i := 1; i <= n; i++ {
		e := &Event{Seq: uint64(i), Time: time.Unix(int64(1700000000+i), 0).UTC(), Node: "n1",
			Operation: "transit/encrypt", Key: "app", Outcome: Allowed, Status: 200,
			HMACs: map[string]string{"plaintext": "hmac-sha256:ab"}, PrevHash: prev}
		h, err := ChainHash(prev, e)
		if err != nil {
			t.Fatal(err)
		}
		e.Hash, prev = h, h
		out = append(out, e)
	}
	return out
}

func export(t testing.TB, evs []*Event) []string {
	var lines []string
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	return lines
}

func verifyLines(lines []string) error {
	var v *Verifier
	for _, l := range lines {
		e, err := Decode([]byte(l))
		if err != nil {
			return err
		}
		if v == nil {
			v = NewVerifier(e.Seq-1, e.PrevHash)
			if e.Seq == 1 && e.PrevHash != GenesisHash {
				return &Problem{Seq: 1, Reason: "first event does not start from the genesis hash"}
			}
		}
		if err := v.Next(e); err != nil {
			return err
		}
	}
	return nil
}

func TestVerifyCatchesEveryTampering(t *testing.T) {
	lines := export(t, chainOf(t, 10))
	if err := verifyLines(lines); err != nil {
		t.Fatalf("intact chain: %v", err)
	}
	edit := func(i int, from, to string) []string {
		c := append([]string(nil), lines...)
		c[i] = strings.Replace(c[i], from, to, 1)
		return c
	}
	del := append(append([]string(nil), lines[:4]...), lines[5:]...)
	swap := append([]string(nil), lines...)
	swap[3], swap[4] = swap[4], swap[3]
	for name, c := range map[string]struct {
		lines []string
		seq   uint64
		word  string
	}{
		"edit field":  {edit(6, `"outcome":"allowed"`, `"outcome":"denied"`), 7, "edited"},
		"edit key":    {edit(2, `"key":"app"`, `"key":"other"`), 3, "edited"},
		"delete line": {del, 5, "missing"},
		"swap lines":  {swap, 4, "out of order"},
		"relink":      {edit(8, lines[8][strings.Index(lines[8], `"prev_hash":"`)+13:][:8], "00000000"), 9, "prev_hash"},
	} {
		err := verifyLines(c.lines)
		var p *Problem
		if !errors.As(err, &p) || p.Seq != c.seq || !strings.Contains(p.Error(), c.word) {
			t.Errorf("%s: got %v, want a problem at seq %d mentioning %q", name, err, c.seq, c.word)
		}
	}
}

func TestCanonicalIsStableAcrossRoundTrip(t *testing.T) {
	e := chainOf(t, 1)[0]
	b, _ := json.Marshal(e)
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := Canonical(e)
	c2, _ := Canonical(back)
	if !bytes.Equal(c1, c2) {
		t.Fatalf("canonical form changed:\n%s\n%s", c1, c2)
	}
}

func FuzzDecode(f *testing.F) {
	for _, l := range export(f, chainOf(f, 2)) {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"seq":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		// A decoded event re-encodes to a canonical form that is stable.
		c1, err := Canonical(e)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := json.Marshal(e)
		e2, err := Decode(b2)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		c2, _ := Canonical(e2)
		if !bytes.Equal(c1, c2) {
			t.Fatalf("canonical form not stable")
		}
	})
}

func writeExport(t testing.TB, evs []*Event, priv ed25519.PrivateKey, cpEvery int) []string {
	var buf bytes.Buffer
	pub := priv.Public().(ed25519.PublicKey)
	w, err := NewExportWriter(&buf, ExportHeader{PublicKey: base64.StdEncoding.EncodeToString(pub), FromSeq: evs[0].Seq, ToSeq: evs[len(evs)-1].Seq})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		w.Event(e)
		if (i+1)%cpEvery == 0 || i == len(evs)-1 {
			cp := &Checkpoint{Seq: e.Seq, Hash: e.Hash, Time: time.Unix(1700000000, 0)}
			cp.Sign(priv)
			w.Checkpoint(cp)
		}
	}
	w.Flush()
	return strings.Split(strings.TrimSpace(buf.String()), "\n")
}

func TestVerifyExport(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	lines := writeExport(t, chainOf(t, 12), priv, 5) // header, 12 events, checkpoints after 5, 10, 12
	check := func(ls []string, pin ed25519.PublicKey) (*VerifyReport, error) {
		return VerifyExport(strings.NewReader(strings.Join(ls, "\n")+"\n"), pin)
	}
	rep, err := check(lines, pub)
	if err != nil || rep.Events != 12 || rep.Checkpoints != 3 || !rep.PublicKeyPinned {
		t.Fatalf("intact export: %+v, %v", rep, err)
	}
	if _, err := check(lines, nil); err != nil {
		t.Fatalf("intact export with the header's key: %v", err)
	}
	forged := writeExport(t, chainOf(t, 12), otherPriv, 5)
	var p *Problem
	if _, err := check(forged, pub); !errors.As(err, &p) || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("export signed by another key, pinned key: %v", err)
	}
	// Truncation: drop the last event and its checkpoint, keep the header.
	cut := lines[:len(lines)-2]
	if _, err := check(cut, pub); !errors.As(err, &p) || p.Seq != 12 || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated export: %v", err)
	}
	// Cutting events off the end and lowering the unsigned header's to_seq
	// is caught: no checkpoint covers the new last event.
	var hdr ExportHeader
	json.Unmarshal([]byte(lines[0]), &hdr)
	hdr.ToSeq = 7
	hb, _ := json.Marshal(hdr)
	short := append([]string{string(hb)}, lines[1:9]...) // events 1-7 and the checkpoint of 5
	if _, err := check(short, pub); !errors.As(err, &p) || p.Seq != 6 {
		t.Fatalf("export cut after seq 7 with a lowered to_seq: %v", err)
	}
	// Re-chaining an edited event (a forger recomputes hashes) is caught
	// by the signed checkpoint that follows it.
	evs := chainOf(t, 12)
	evs[2].Outcome = Denied
	prev := GenesisHash
	for _, e := range evs {
		e.PrevHash = prev
		e.Hash, _ = ChainHash(prev, e)
		prev = e.Hash
	}
	rechained := export(t, evs)
	mixed := append([]string{lines[0]}, rechained[:5]...)
	mixed = append(mixed, lines[6]) // the genuine checkpoint of seq 5
	if _, err := check(mixed, pub); !errors.As(err, &p) || p.Seq != 5 || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("re-chained edit: %v", err)
	}
}

func FuzzVerifyExport(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(nil)
	f.Add([]byte(strings.Join(writeExport(f, chainOf(f, 4), priv, 2), "\n")))
	f.Add([]byte(`{"keyraft_audit_export":1,"public_key":"","from_seq":1,"to_seq":9}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := VerifyExport(bytes.NewReader(b), nil)
		if err == nil && rep.Events > 0 && rep.LastSeq < rep.FirstSeq {
			t.Fatalf("accepted export with seqs going backwards: %+v", rep)
		}
	})
}

func TestWithHashEqualsEncodingWithHash(t *testing.T) {
	e := chainOf(t, 3)[2]
	want, _ := json.Marshal(e)
	h := e.Hash
	e.Hash = ""
	canon, _ := Canonical(e)
	got, err := WithHash(canon, h)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("WithHash:\n%s\nwant\n%s (%v)", got, want, err)
	}
}
