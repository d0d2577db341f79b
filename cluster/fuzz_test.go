package cluster

import (
	"bytes"
	"testing"

	"github.com/keyraft/keyraft/fsm"
)

// FuzzDecodeResult: a forwarded result from a (possibly broken) leader
// never panics, and what decodes re-encodes to the same bytes.
func FuzzDecodeResult(f *testing.F) {
	for _, r := range []*fsm.Result{
		{Index: 7, FirstSeq: 1, LastSeq: 3},
		{Index: 9, Err: &fsm.ConflictError{Key: "transit/key/app"}},
		{Index: 1 << 40},
	} {
		f.Add(encodeResult(r))
	}
	f.Add([]byte{})
	f.Add(make([]byte, 25))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResult(b)
		if err != nil {
			return
		}
		if r.Index == 0 {
			t.Fatal("decoded a result without an index")
		}
		if r.Err == nil || b[24] == resultConflict {
			if again := encodeResult(r); !bytes.Equal(again, b) {
				t.Fatalf("round trip: %x → %x", b, again)
			}
		}
	})
}

// FuzzParseIdentity: a damaged identity file is refused with an error,
// never a panic.
func FuzzParseIdentity(f *testing.F) {
	f.Add([]byte(`{"tls":{"cert":"","key":"","ca":""},"gossip_key":""}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if id, err := parseIdentity(b); err == nil && len(id.GossipKey) != 32 {
			t.Fatal("accepted an identity without a 32-byte gossip key")
		}
	})
}
