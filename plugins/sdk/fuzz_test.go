package sdk

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/keyraft/keyraft/plugins"
	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
)

func mustMarshal(f *testing.F, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzWriteRequest: any bytes a node might send as a write batch either
// fail to decode or convert, or convert to a batch of known kinds that
// converts back to the same mutations. Never a panic.
func FuzzWriteRequest(f *testing.F) {
	f.Add(mustMarshal(f, &pb.WriteRequest{Mutations: []*pb.Mutation{
		{Kind: pb.MutationKind_MUTATION_KIND_PUT, Key: []byte("k"), Value: []byte("v")},
		{Kind: pb.MutationKind_MUTATION_KIND_DELETE_RANGE, Key: []byte("a"), Value: []byte("b")},
		{Kind: pb.MutationKind_MUTATION_KIND_DELETE_PREFIX},
	}}))
	f.Add(mustMarshal(f, &pb.WriteRequest{Mutations: []*pb.Mutation{{Kind: 42, Key: []byte("x")}}}))
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x0a, 0x02, 0x08, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req pb.WriteRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		batch, err := MutationsFromProto(req.GetMutations())
		if err != nil {
			return
		}
		if len(batch) != len(req.GetMutations()) {
			t.Fatalf("%d mutations became %d", len(req.GetMutations()), len(batch))
		}
		for _, m := range batch {
			if m.Kind < plugins.Put || m.Kind > plugins.DeleteRange {
				t.Fatalf("unknown kind %d passed the conversion", m.Kind)
			}
		}
		back, err := MutationsToProto(batch)
		if err != nil {
			t.Fatalf("a converted batch does not convert back: %v", err)
		}
		for i, m := range back {
			o := req.GetMutations()[i]
			if m.GetKind() != o.GetKind() || !bytes.Equal(m.GetKey(), o.GetKey()) || !bytes.Equal(m.GetValue(), o.GetValue()) {
				t.Fatalf("mutation %d changed in the round trip: %v -> %v", i, o, m)
			}
		}
	})
}

// FuzzScanResponse: whatever chunks a plugin streams, the checker lets
// through only pairs in strictly ascending order, within the prefix and
// from the start key. Never a panic.
func FuzzScanResponse(f *testing.F) {
	f.Add(mustMarshal(f, &pb.ScanResponse{Pairs: []*pb.KeyValue{{Key: []byte("p/a")}, {Key: []byte("p/b"), Value: []byte("v")}}}),
		mustMarshal(f, &pb.ScanResponse{Pairs: []*pb.KeyValue{{Key: []byte("p/c")}}}), []byte("p/"), []byte(""))
	f.Add(mustMarshal(f, &pb.ScanResponse{Pairs: []*pb.KeyValue{{Key: []byte("p/b")}, {Key: []byte("p/a")}}}),
		[]byte{}, []byte("p/"), []byte("p/a"))
	f.Add([]byte{0x0a, 0x00}, []byte{0x0a, 0x02, 0x0a, 0x00}, []byte(""), []byte(""))
	f.Fuzz(func(t *testing.T, chunk1, chunk2, prefix, start []byte) {
		c := NewScanChecker(prefix, start)
		var passed [][]byte
		for _, data := range [][]byte{chunk1, chunk2} {
			var resp pb.ScanResponse
			if proto.Unmarshal(data, &resp) != nil {
				return
			}
			if c.Check(resp.GetPairs()) != nil {
				return
			}
			for _, kv := range resp.GetPairs() {
				passed = append(passed, kv.GetKey())
			}
		}
		for i, k := range passed {
			if !bytes.HasPrefix(k, prefix) || bytes.Compare(k, start) < 0 {
				t.Fatalf("key %q passed outside prefix %q / before start %q", k, prefix, start)
			}
			if i > 0 && bytes.Compare(passed[i-1], k) >= 0 {
				t.Fatalf("key %q passed after %q", k, passed[i-1])
			}
		}
	})
}

// FuzzEncryptResponse: a crypto plugin's batch answer is either rejected
// or has exactly one result per item, each with a ciphertext or an error.
func FuzzEncryptResponse(f *testing.F) {
	f.Add(mustMarshal(f, &pb.EncryptResponse{Results: []*pb.EncryptResult{{Ciphertext: []byte("c")}, {Error: &pb.ItemError{Message: "bad"}}}}), 2)
	f.Add(mustMarshal(f, &pb.EncryptResponse{Results: []*pb.EncryptResult{{}}}), 1)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		var resp pb.EncryptResponse
		if proto.Unmarshal(data, &resp) != nil || n < 0 || n > 1<<16 {
			return
		}
		rs, err := EncryptResultsFromProto(n, resp.GetResults())
		if err != nil {
			return
		}
		if len(rs) != n {
			t.Fatalf("%d results accepted for %d items", len(rs), n)
		}
		for i, r := range rs {
			if r.Err == nil && len(r.Ciphertext) == 0 {
				t.Fatalf("result %d has neither ciphertext nor error", i)
			}
		}
	})
}
