package conformance_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/bolt"
	"github.com/keyraft/keyraft/plugins/conformance"
	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/internal/plugintest"
	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
)

func openBolt(t *testing.T) *bolt.Store {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBoltInProcess(t *testing.T) {
	conformance.TestStorage(t, func(t *testing.T) plugins.Storage { return openBolt(t) })
}

// grpcPair serves srv on a loopback listener and returns a client conn:
// the SDK's adapters on both sides, in one process, under the race
// detector.
func grpcPair(t *testing.T, register func(*grpc.Server)) *grpc.ClientConn {
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

func TestBoltOverGRPCInProcess(t *testing.T) {
	conformance.TestStorage(t, func(t *testing.T) plugins.Storage {
		store := openBolt(t)
		conn := grpcPair(t, func(s *grpc.Server) { pb.RegisterStorageServer(s, sdk.NewStorageServer(store)) })
		return sdk.NewStorageClient(conn).Storage(context.Background())
	})
}

// TestBoltPlugin runs the suite against the real keyraft-plugin-bolt
// process, started through the host as the node starts it.
func TestBoltPlugin(t *testing.T) {
	bin, sum := plugintest.Build(t, t.TempDir(), "github.com/keyraft/keyraft/cmd/keyraft-plugin-bolt")
	conformance.TestStorage(t, func(t *testing.T) plugins.Storage {
		c, err := host.Start(context.Background(), host.Config{
			Name:    "bolt",
			Command: bin,
			Args:    []string{"-path", filepath.Join(t.TempDir(), "state.db")},
			SHA256:  sum,
			Logger:  plugintest.Logger(t, nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.Storage()
	})
}

func TestSoftInProcess(t *testing.T) {
	conformance.TestCrypto(t, func(t *testing.T) sdk.CryptoBackend { return soft.New() })
}

func TestSoftOverGRPCInProcess(t *testing.T) {
	conformance.TestCrypto(t, func(t *testing.T) sdk.CryptoBackend {
		conn := grpcPair(t, func(s *grpc.Server) { pb.RegisterCryptoServer(s, sdk.NewCryptoServer(soft.New())) })
		return sdk.NewCryptoClient(conn)
	})
}

// TestSoftPlugin runs the suite against the real keyraft-plugin-soft
// process.
func TestSoftPlugin(t *testing.T) {
	bin, sum := plugintest.Build(t, t.TempDir(), "github.com/keyraft/keyraft/cmd/keyraft-plugin-soft")
	conformance.TestCrypto(t, func(t *testing.T) sdk.CryptoBackend {
		c, err := host.Start(context.Background(), host.Config{Name: "soft", Command: bin, SHA256: sum, Logger: plugintest.Logger(t, nil)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.Crypto()
	})
}
