package sdk

import (
	"context"
	"math"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/keyraft/keyraft/plugins"
	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
)

// Handshake is the go-plugin handshake between a node and its plugins. A
// binary started without the cookie says it is a plugin and exits; a
// plugin built against another ProtocolVersion is refused at start.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "KEYRAFT_PLUGIN_COOKIE",
	MagicCookieValue: "9b4c1f0e6a2d4e8f-keyraft-backend",
}

// The names under which the kinds of backend are served.
const (
	StoragePluginName = "storage"
	CryptoPluginName  = "crypto"
)

// PluginSet is the client side's plugin map: every kind of backend a
// plugin binary may serve.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{
		StoragePluginName: &StoragePlugin{},
		CryptoPluginName:  &CryptoPlugin{},
	}
}

// maxMsg is the message size limit on both sides: the peer is our own
// child process behind mutual TLS, and one stored value may be large.
const maxMsg = math.MaxInt32

// ServerOptions are the gRPC server options a plugin serves with.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg)}
}

// DialOptions are the gRPC dial options the host connects with.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg))}
}

// StoragePlugin is the go-plugin glue of a storage backend. Impl is set
// on the plugin side only.
type StoragePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl plugins.Storage

	mu  sync.Mutex
	srv *StorageServer
}

// GRPCServer implements plugin.GRPCPlugin.
func (p *StoragePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	srv := NewStorageServer(p.Impl)
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	pb.RegisterStorageServer(s, srv)
	return nil
}

// GRPCClient implements plugin.GRPCPlugin. ctx ends when the plugin
// process exits.
func (p *StoragePlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	sc := NewStorageClient(c)
	sc.done = ctx.Done()
	return sc, nil
}

// CryptoPlugin is the go-plugin glue of a crypto backend. Impl is set on
// the plugin side only.
type CryptoPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl CryptoBackend
}

// GRPCServer implements plugin.GRPCPlugin.
func (p *CryptoPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterCryptoServer(s, NewCryptoServer(p.Impl))
	return nil
}

// GRPCClient implements plugin.GRPCPlugin.
func (p *CryptoPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	cc := NewCryptoClient(c)
	cc.done = ctx.Done()
	return cc, nil
}
