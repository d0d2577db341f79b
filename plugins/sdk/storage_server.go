package sdk

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyraft/keyraft/plugins"
	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
)

// Scan answers are sent in chunks of at most this many pairs or bytes.
const (
	scanChunkPairs = 512
	scanChunkBytes = 1 << 20
)

// StorageServer serves a plugins.Storage over the storage contract.
type StorageServer struct {
	pb.UnimplementedStorageServer
	impl plugins.Storage

	mu     sync.Mutex
	views  map[uint64]*openView
	nextID uint64
	closed bool
}

type openView struct {
	mu sync.Mutex // one reader at a time: a backend's view need not be safe for concurrent use
	v  plugins.View
}

// NewStorageServer returns the gRPC server of impl.
func NewStorageServer(impl plugins.Storage) *StorageServer {
	return &StorageServer{impl: impl, views: map[uint64]*openView{}}
}

// reader returns the live store or the open view id, with its unlock.
func (s *StorageServer) reader(id uint64) (plugins.Reader, func(), error) {
	if id == 0 {
		return s.impl, func() {}, nil
	}
	s.mu.Lock()
	ov := s.views[id]
	s.mu.Unlock()
	if ov == nil {
		return nil, nil, status.Errorf(codes.NotFound, "storage: view %d not open", id)
	}
	ov.mu.Lock()
	return ov.v, ov.mu.Unlock, nil
}

// Get implements the storage contract.
func (s *StorageServer) Get(_ context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	r, unlock, err := s.reader(req.GetViewId())
	if err != nil {
		return nil, err
	}
	defer unlock()
	var v []byte
	if req.Head != nil {
		n := int(min(req.GetHead(), uint64(maxMsg)))
		if hr, ok := r.(plugins.HeadReader); ok {
			v, err = hr.GetHead(req.GetKey(), n)
		} else if v, err = r.Get(req.GetKey()); v != nil {
			v = v[:min(n, len(v))]
		}
	} else {
		v, err = r.Get(req.GetKey())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetResponse{Found: v != nil, Value: v}, nil
}

// Scan implements the storage contract.
func (s *StorageServer) Scan(req *pb.ScanRequest, stream pb.Storage_ScanServer) error {
	r, unlock, err := s.reader(req.GetViewId())
	if err != nil {
		return err
	}
	defer unlock()
	ctx := stream.Context()
	chunk := &pb.ScanResponse{}
	size := 0
	flush := func() error {
		if len(chunk.Pairs) == 0 {
			return nil
		}
		err := stream.Send(chunk)
		chunk.Pairs, size = chunk.Pairs[:0], 0
		return err
	}
	errSend := errors.New("send failed")
	var sendErr error
	err = r.ScanFrom(req.GetPrefix(), req.GetStart(), func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			sendErr = err
			return errSend
		}
		// The backend's slices are valid only during this call.
		chunk.Pairs = append(chunk.Pairs, &pb.KeyValue{Key: append([]byte(nil), k...), Value: append([]byte{}, v...)})
		size += len(k) + len(v)
		if len(chunk.Pairs) >= scanChunkPairs || size >= scanChunkBytes {
			if err := flush(); err != nil {
				sendErr = err
				return errSend
			}
		}
		return nil
	})
	if errors.Is(err, errSend) {
		return sendErr
	}
	if err != nil {
		return toStatus(err)
	}
	return flush()
}

// Write implements the storage contract.
func (s *StorageServer) Write(_ context.Context, req *pb.WriteRequest) (*pb.WriteResponse, error) {
	batch, err := MutationsFromProto(req.GetMutations())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.impl.Write(batch); err != nil {
		return nil, toStatus(err)
	}
	return &pb.WriteResponse{}, nil
}

// WriteStream implements the storage contract: the chunks are gathered,
// then written as one batch.
func (s *StorageServer) WriteStream(stream pb.Storage_WriteStreamServer) error {
	var batch []plugins.Mutation
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		part, err := MutationsFromProto(req.GetMutations())
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		batch = append(batch, part...)
	}
	if err := s.impl.Write(batch); err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(&pb.WriteResponse{})
}

// OpenView implements the storage contract.
func (s *StorageServer) OpenView(context.Context, *pb.OpenViewRequest) (*pb.OpenViewResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, toStatus(plugins.ErrStorageClosed)
	}
	v, err := s.impl.View()
	if err != nil {
		return nil, toStatus(err)
	}
	s.nextID++
	s.views[s.nextID] = &openView{v: v}
	return &pb.OpenViewResponse{ViewId: s.nextID}, nil
}

// CloseView implements the storage contract.
func (s *StorageServer) CloseView(_ context.Context, req *pb.CloseViewRequest) (*pb.CloseViewResponse, error) {
	s.mu.Lock()
	ov := s.views[req.GetViewId()]
	delete(s.views, req.GetViewId())
	s.mu.Unlock()
	if ov == nil {
		return nil, status.Errorf(codes.NotFound, "storage: view %d not open", req.GetViewId())
	}
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if err := ov.v.Close(); err != nil {
		return nil, toStatus(err)
	}
	return &pb.CloseViewResponse{}, nil
}

// Close implements the storage contract. Open views are closed first: a
// backend may wait for its readers before it closes.
func (s *StorageServer) Close(context.Context, *pb.CloseRequest) (*pb.CloseResponse, error) {
	if err := s.closeAll(); err != nil {
		return nil, toStatus(err)
	}
	return &pb.CloseResponse{}, nil
}

func (s *StorageServer) closeAll() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	views := s.views
	s.views = map[uint64]*openView{}
	s.mu.Unlock()
	for _, ov := range views {
		ov.mu.Lock()
		ov.v.Close()
		ov.mu.Unlock()
	}
	return s.impl.Close()
}

// Compact implements the storage contract: it runs the backend's
// plugins.Compactor, or answers UNIMPLEMENTED when it has none. It holds
// no lock of the server, so views can be closed while it waits for them.
func (s *StorageServer) Compact(context.Context, *pb.CompactRequest) (*pb.CompactResponse, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, toStatus(plugins.ErrStorageClosed)
	}
	c, ok := s.impl.(plugins.Compactor)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "storage: backend cannot compact")
	}
	if err := c.Compact(); err != nil {
		return nil, toStatus(err)
	}
	return &pb.CompactResponse{}, nil
}
