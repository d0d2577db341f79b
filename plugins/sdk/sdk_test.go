package sdk_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/bolt"
	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
)

func pair(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(sdk.ServerOptions()...)
	register(srv)
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), append(sdk.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	return conn
}

func openBolt(t testing.TB) *bolt.Store {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// noHead hides bolt's HeadReader: the server falls back to Get.
type noHead struct{ plugins.Storage }

func TestGetHeadFallsBackToGet(t *testing.T) {
	store := openBolt(t)
	conn := pair(t, func(s *grpc.Server) { pb.RegisterStorageServer(s, sdk.NewStorageServer(noHead{store})) })
	c := sdk.NewStorageClient(conn)
	ctx := context.Background()
	if err := c.Write(ctx, []plugins.Mutation{{Kind: plugins.Put, Key: []byte("k"), Value: []byte("0123456789")}}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.GetHead(ctx, 0, []byte("k"), 3); err != nil || string(v) != "012" {
		t.Fatalf("GetHead = %q, %v", v, err)
	}
}

func TestUnknownViewAndClosedStore(t *testing.T) {
	store := openBolt(t)
	conn := pair(t, func(s *grpc.Server) { pb.RegisterStorageServer(s, sdk.NewStorageServer(store)) })
	c := sdk.NewStorageClient(conn)
	ctx := context.Background()
	if _, err := c.Get(ctx, 42, []byte("k")); !errors.Is(err, sdk.ErrViewNotFound) {
		t.Fatalf("Get on an unknown view: %v", err)
	}
	id, err := c.OpenView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Close with a view open: the server closes the view first (bbolt's
	// Close would otherwise wait for it forever).
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, id, []byte("k")); !errors.Is(err, sdk.ErrViewNotFound) {
		t.Fatalf("Get on a view after Close: %v", err)
	}
	if _, err := c.Get(ctx, 0, []byte("k")); !errors.Is(err, plugins.ErrStorageClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

func TestUnknownKindRejectedBeforeSending(t *testing.T) {
	c := sdk.NewStorageClient(pair(t, func(*grpc.Server) {}))
	err := c.Write(context.Background(), []plugins.Mutation{{Kind: 9, Key: []byte("k")}})
	if err == nil || errors.As(err, new(*sdk.TransportError)) {
		t.Fatalf("Write of kind 9: %v", err)
	}
}

func TestUnimplementedContract(t *testing.T) {
	// A storage-only plugin asked for crypto: a clear RemoteError.
	conn := pair(t, func(s *grpc.Server) { pb.RegisterStorageServer(s, sdk.NewStorageServer(openBolt(t))) })
	_, err := sdk.NewCryptoClient(conn).Capabilities(context.Background())
	var re *sdk.RemoteError
	if !errors.As(err, &re) || re.Code != codes.Unimplemented {
		t.Fatalf("crypto call on a storage plugin: %v", err)
	}
}

// short drops the last result of every batch: a backend breaking the
// contract. The server refuses to send it, the client reports ErrProtocol.
type short struct{ soft.Backend }

func (s short) Encrypt(ctx context.Context, items []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
	rs, err := s.Backend.Encrypt(ctx, items)
	return rs[:len(rs)-1], err
}

// lying answers with a result count of its own choosing, straight on the
// wire (as a plugin built without this SDK could).
type lying struct{ pb.UnimplementedCryptoServer }

func (lying) HMAC(context.Context, *pb.HMACRequest) (*pb.HMACResponse, error) {
	return &pb.HMACResponse{Results: []*pb.HMACResult{{Mac: []byte("x")}, {Mac: []byte("y")}, {}}}, nil
}

func (lying) Sign(context.Context, *pb.SignRequest) (*pb.SignResponse, error) {
	return &pb.SignResponse{Results: []*pb.SignResult{{}}}, nil
}

func TestCryptoContractBreachesAreProtocolErrors(t *testing.T) {
	ctx := context.Background()
	k, _ := soft.New().Generate(ctx, sdk.KeyAES256GCM96)
	c := sdk.NewCryptoClient(pair(t, func(s *grpc.Server) { pb.RegisterCryptoServer(s, sdk.NewCryptoServer(short{})) }))
	if _, err := c.Encrypt(ctx, []sdk.EncryptItem{{Key: sdk.KeyRef{Handle: k.Handle, Material: k.Material}}}); !errors.Is(err, sdk.ErrProtocol) {
		t.Fatalf("short answer: %v", err)
	}
	l := sdk.NewCryptoClient(pair(t, func(s *grpc.Server) { pb.RegisterCryptoServer(s, lying{}) }))
	if _, err := l.HMAC(ctx, []sdk.HMACItem{{}}); !errors.Is(err, sdk.ErrProtocol) {
		t.Fatalf("3 results for 1 item: %v", err)
	}
	if _, err := l.Sign(ctx, []sdk.SignItem{{}}); !errors.Is(err, sdk.ErrProtocol) {
		t.Fatalf("a result with neither signature nor error: %v", err)
	}
}

func TestTransportErrors(t *testing.T) {
	store := openBolt(t)
	conn := pair(t, func(s *grpc.Server) { pb.RegisterStorageServer(s, sdk.NewStorageServer(store)) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := sdk.NewStorageClient(conn).Get(ctx, 0, []byte("k"))
	var te *sdk.TransportError
	if !errors.As(err, &te) || te.Code != codes.Canceled {
		t.Fatalf("cancelled call: %v", err)
	}
}
