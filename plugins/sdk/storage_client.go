package sdk

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyraft/keyraft/plugins"
	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
)

// Write batches up to this size go in one message; larger ones are
// streamed in chunks of about this size and applied as one batch.
const writeChunkBytes = 4 << 20

// StorageClient calls a storage plugin. Its methods take a context (the
// host puts its per-call timeout there) and return the contract's
// sentinels, a *RemoteError, a *TransportError, or an ErrProtocol error.
type StorageClient struct {
	c    pb.StorageClient
	done <-chan struct{}
}

// NewStorageClient returns a client on conn.
func NewStorageClient(conn grpc.ClientConnInterface) *StorageClient {
	return &StorageClient{c: pb.NewStorageClient(conn)}
}

// Done is closed when the plugin process has exited (nil outside
// go-plugin).
func (s *StorageClient) Done() <-chan struct{} { return s.done }

// Get reads key from the live store (view 0) or an open view. It
// returns nil for a missing key and a non-nil slice for an empty value.
func (s *StorageClient) Get(ctx context.Context, view uint64, key []byte) ([]byte, error) {
	return s.get(ctx, &pb.GetRequest{Key: key, ViewId: view})
}

// GetHead reads at most the first n bytes of the value at key.
func (s *StorageClient) GetHead(ctx context.Context, view uint64, key []byte, n int) ([]byte, error) {
	h := uint64(max(n, 0))
	v, err := s.get(ctx, &pb.GetRequest{Key: key, ViewId: view, Head: &h})
	if err == nil && len(v) > n {
		return nil, protocolErrorf("head of %d bytes returned %d bytes", n, len(v))
	}
	return v, err
}

func (s *StorageClient) get(ctx context.Context, req *pb.GetRequest) ([]byte, error) {
	resp, err := s.c.Get(ctx, req)
	if err != nil {
		return nil, fromStatus(err)
	}
	if !resp.GetFound() {
		if len(resp.GetValue()) > 0 {
			return nil, protocolErrorf("get returned a value for a missing key")
		}
		return nil, nil
	}
	if resp.Value == nil {
		return []byte{}, nil
	}
	return resp.Value, nil
}

// Scan calls fn for every key with prefix from the first key >= start,
// in ascending order, until fn returns an error (which Scan returns).
// Answers out of order or outside the prefix fail with ErrProtocol.
func (s *StorageClient) Scan(ctx context.Context, view uint64, prefix, start []byte, fn func(k, v []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream early when fn stops the scan
	stream, err := s.c.Scan(ctx, &pb.ScanRequest{Prefix: prefix, Start: start, ViewId: view})
	if err != nil {
		return fromStatus(err)
	}
	check := NewScanChecker(prefix, start)
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fromStatus(err)
		}
		if err := check.Check(resp.GetPairs()); err != nil {
			return err
		}
		for _, kv := range resp.GetPairs() {
			if err := fn(kv.GetKey(), kv.GetValue()); err != nil {
				return err
			}
		}
	}
}

// Write applies batch atomically: in one message, or streamed in chunks
// when it is large.
func (s *StorageClient) Write(ctx context.Context, batch []plugins.Mutation) error {
	size := 0
	for _, m := range batch {
		size += mutationSize(m)
	}
	if size <= writeChunkBytes {
		ms, err := MutationsToProto(batch)
		if err != nil {
			return err
		}
		_, err = s.c.Write(ctx, &pb.WriteRequest{Mutations: ms})
		return fromStatus(err)
	}
	// Check every kind before anything is sent.
	if _, err := MutationsToProto(batch); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // on an error below, the server sees the stream cancelled and applies nothing
	stream, err := s.c.WriteStream(ctx)
	if err != nil {
		return fromStatus(err)
	}
	for len(batch) > 0 {
		n, sz := 0, 0
		for n < len(batch) && (n == 0 || sz+mutationSize(batch[n]) <= writeChunkBytes) {
			sz += mutationSize(batch[n])
			n++
		}
		ms, _ := MutationsToProto(batch[:n])
		if err := stream.Send(&pb.WriteRequest{Mutations: ms}); err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the stream; its status says why.
				_, err = stream.CloseAndRecv()
			}
			return fromStatus(err)
		}
		batch = batch[n:]
	}
	_, err = stream.CloseAndRecv()
	return fromStatus(err)
}

// OpenView opens a consistent read-only view and returns its id.
func (s *StorageClient) OpenView(ctx context.Context) (uint64, error) {
	resp, err := s.c.OpenView(ctx, &pb.OpenViewRequest{})
	if err != nil {
		return 0, fromStatus(err)
	}
	if resp.GetViewId() == 0 {
		return 0, protocolErrorf("open view returned view id 0")
	}
	return resp.GetViewId(), nil
}

// CloseView closes an open view.
func (s *StorageClient) CloseView(ctx context.Context, view uint64) error {
	_, err := s.c.CloseView(ctx, &pb.CloseViewRequest{ViewId: view})
	return fromStatus(err)
}

// Close closes the store inside the plugin.
func (s *StorageClient) Close(ctx context.Context) error {
	_, err := s.c.Close(ctx, &pb.CloseRequest{})
	return fromStatus(err)
}

// Compact asks the backend to rewrite its files without freed contents
// (plugins.Compactor). It returns plugins.ErrUnsupported when the backend
// cannot.
func (s *StorageClient) Compact(ctx context.Context) error {
	_, err := s.c.Compact(ctx, &pb.CompactRequest{})
	if status.Code(err) == codes.Unimplemented {
		return plugins.ErrUnsupported
	}
	return fromStatus(err)
}

// Storage returns a plugins.Storage that calls s with ctx (no per-call
// timeout, no restart: the plugin host adds those).
func (s *StorageClient) Storage(ctx context.Context) plugins.Storage {
	return &directStorage{ctx: ctx, c: s}
}

type directStorage struct {
	ctx context.Context
	c   *StorageClient
}

func (d *directStorage) Get(key []byte) ([]byte, error) { return d.c.Get(d.ctx, 0, key) }
func (d *directStorage) GetHead(key []byte, n int) ([]byte, error) {
	return d.c.GetHead(d.ctx, 0, key, n)
}
func (d *directStorage) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return d.c.Scan(d.ctx, 0, prefix, nil, fn)
}
func (d *directStorage) ScanFrom(prefix, from []byte, fn func(k, v []byte) error) error {
	return d.c.Scan(d.ctx, 0, prefix, from, fn)
}
func (d *directStorage) Write(batch []plugins.Mutation) error { return d.c.Write(d.ctx, batch) }
func (d *directStorage) Close() error                         { return d.c.Close(d.ctx) }
func (d *directStorage) Compact() error                       { return d.c.Compact(d.ctx) }
func (d *directStorage) View() (plugins.View, error) {
	id, err := d.c.OpenView(d.ctx)
	if err != nil {
		return nil, err
	}
	return &directView{d: d, id: id}, nil
}

type directView struct {
	d  *directStorage
	id uint64
}

func (v *directView) Get(key []byte) ([]byte, error) { return v.d.c.Get(v.d.ctx, v.id, key) }
func (v *directView) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return v.d.c.Scan(v.d.ctx, v.id, prefix, nil, fn)
}
func (v *directView) ScanFrom(prefix, from []byte, fn func(k, v []byte) error) error {
	return v.d.c.Scan(v.d.ctx, v.id, prefix, from, fn)
}
func (v *directView) Close() error { return v.d.c.CloseView(v.d.ctx, v.id) }
