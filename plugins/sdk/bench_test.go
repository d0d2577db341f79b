package sdk_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	"github.com/keyraft/keyraft/plugins"
	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
	"github.com/keyraft/keyraft/plugins/sdk"
)

// BenchmarkGetOverGRPCInProcess is the gRPC share of a plugin call: the
// SDK's adapters over loopback TCP in one process, no TLS, no second
// process (compare with plugins/host BenchmarkGet/plugin).
func BenchmarkGetOverGRPCInProcess(b *testing.B) {
	store := openBolt(b)
	conn := pair(b, func(s *grpc.Server) { pb.RegisterStorageServer(s, sdk.NewStorageServer(store)) })
	c := sdk.NewStorageClient(conn)
	ctx := context.Background()
	if err := c.Write(ctx, []plugins.Mutation{{Kind: plugins.Put, Key: []byte("k"), Value: make([]byte, 256)}}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Get(ctx, 0, []byte("k")); err != nil {
			b.Fatal(err)
		}
	}
}
