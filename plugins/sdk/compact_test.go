package sdk_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc"

	"github.com/keyraft/keyraft/plugins"
	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
	"github.com/keyraft/keyraft/plugins/sdk"
)

// Compact reaches a backend that can compact, and a backend that cannot
// answers plugins.ErrUnsupported (noHead hides bolt's Compactor too).
func TestCompactOverTheContract(t *testing.T) {
	ctx := context.Background()
	store := openBolt(t)
	c := sdk.NewStorageClient(pair(t, func(s *grpc.Server) { pb.RegisterStorageServer(s, sdk.NewStorageServer(store)) }))
	if err := c.Write(ctx, []plugins.Mutation{{Kind: plugins.Put, Key: []byte("k"), Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Compact(ctx); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if v, err := c.Get(ctx, 0, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("after Compact: %q %v", v, err)
	}
	if err := c.Storage(ctx).(plugins.Compactor).Compact(); err != nil {
		t.Fatalf("Compact through Storage: %v", err)
	}

	other := sdk.NewStorageClient(pair(t, func(s *grpc.Server) { pb.RegisterStorageServer(s, sdk.NewStorageServer(noHead{openBolt(t)})) }))
	if err := other.Compact(ctx); !errors.Is(err, plugins.ErrUnsupported) {
		t.Fatalf("Compact on a backend without it: %v, want ErrUnsupported", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Compact(ctx); !errors.Is(err, plugins.ErrStorageClosed) {
		t.Fatalf("Compact after Close: %v", err)
	}
}
