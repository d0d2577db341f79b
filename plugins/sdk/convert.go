package sdk

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/keyraft/keyraft/plugins"
	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
)

// MutationsToProto converts a batch for the wire. It rejects a kind the
// contract does not know, as a backend would.
func MutationsToProto(batch []plugins.Mutation) ([]*pb.Mutation, error) {
	out := make([]*pb.Mutation, len(batch))
	for i, m := range batch {
		k, err := kindToProto(m.Kind)
		if err != nil {
			return nil, err
		}
		out[i] = &pb.Mutation{Kind: k, Key: m.Key, Value: m.Value}
	}
	return out, nil
}

// MutationsFromProto converts a batch received from the wire, rejecting
// nil entries and unknown kinds so that no backend sees them.
func MutationsFromProto(in []*pb.Mutation) ([]plugins.Mutation, error) {
	out := make([]plugins.Mutation, len(in))
	for i, m := range in {
		if m == nil {
			return nil, fmt.Errorf("storage: mutation %d is empty", i)
		}
		k, err := kindFromProto(m.GetKind())
		if err != nil {
			return nil, fmt.Errorf("storage: mutation %d: %w", i, err)
		}
		out[i] = plugins.Mutation{Kind: k, Key: m.GetKey(), Value: m.GetValue()}
	}
	return out, nil
}

func kindToProto(k plugins.MutationKind) (pb.MutationKind, error) {
	switch k {
	case plugins.Put:
		return pb.MutationKind_MUTATION_KIND_PUT, nil
	case plugins.Delete:
		return pb.MutationKind_MUTATION_KIND_DELETE, nil
	case plugins.DeletePrefix:
		return pb.MutationKind_MUTATION_KIND_DELETE_PREFIX, nil
	case plugins.DeleteRange:
		return pb.MutationKind_MUTATION_KIND_DELETE_RANGE, nil
	}
	return 0, fmt.Errorf("storage: unknown mutation kind %d", k)
}

func kindFromProto(k pb.MutationKind) (plugins.MutationKind, error) {
	switch k {
	case pb.MutationKind_MUTATION_KIND_PUT:
		return plugins.Put, nil
	case pb.MutationKind_MUTATION_KIND_DELETE:
		return plugins.Delete, nil
	case pb.MutationKind_MUTATION_KIND_DELETE_PREFIX:
		return plugins.DeletePrefix, nil
	case pb.MutationKind_MUTATION_KIND_DELETE_RANGE:
		return plugins.DeleteRange, nil
	}
	return 0, fmt.Errorf("unknown mutation kind %d", int32(k))
}

// mutationSize is about what a mutation costs on the wire.
func mutationSize(m plugins.Mutation) int { return len(m.Key) + len(m.Value) + 16 }

// ScanChecker checks a plugin's scan answer against the contract, chunk
// by chunk: keys strictly ascending, within the prefix, at or after the
// start key.
type ScanChecker struct {
	prefix, start []byte
	last          []byte
	seen          bool
}

// NewScanChecker checks a scan of prefix from start.
func NewScanChecker(prefix, start []byte) *ScanChecker {
	return &ScanChecker{prefix: prefix, start: start}
}

// Check checks the next chunk.
func (c *ScanChecker) Check(pairs []*pb.KeyValue) error {
	for _, kv := range pairs {
		if kv == nil {
			return protocolErrorf("scan returned an empty pair")
		}
		k := kv.GetKey()
		if !bytes.HasPrefix(k, c.prefix) {
			return protocolErrorf("scan of prefix %q returned key %q", c.prefix, k)
		}
		if bytes.Compare(k, c.start) < 0 {
			return protocolErrorf("scan from %q returned earlier key %q", c.start, k)
		}
		if c.seen && bytes.Compare(k, c.last) <= 0 {
			return protocolErrorf("scan returned key %q after %q (not ascending)", k, c.last)
		}
		c.last, c.seen = append(c.last[:0], k...), true
	}
	return nil
}

// itemErr converts an item error for the wire.
func itemErrToProto(err error) *pb.ItemError {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if msg == "" {
		msg = "failed"
	}
	return &pb.ItemError{Message: msg}
}

func itemErrFromProto(e *pb.ItemError) error {
	if e == nil {
		return nil
	}
	msg := e.GetMessage()
	if msg == "" {
		msg = "failed"
	}
	return &ItemError{Msg: msg}
}

// ItemError is the failure of one item of a batch, as the plugin said it.
type ItemError struct{ Msg string }

func (e *ItemError) Error() string { return e.Msg }

func keyToProto(k KeyRef) *pb.KeyRef { return &pb.KeyRef{Handle: k.Handle, Material: k.Material} }

func keyFromProto(k *pb.KeyRef) KeyRef {
	return KeyRef{Handle: k.GetHandle(), Material: k.GetMaterial()}
}

// checkCount checks that a batch answer has one result per item.
func checkCount(op string, items, results int) error {
	if items != results {
		return protocolErrorf("%s of %d items returned %d results", op, items, results)
	}
	return nil
}

var errNilResult = errors.New("nil result")

// checkResults rejects nil entries in a batch answer.
func checkResults[T any](op string, rs []*T) error {
	for i, r := range rs {
		if r == nil {
			return protocolErrorf("%s result %d: %v", op, i, errNilResult)
		}
	}
	return nil
}
