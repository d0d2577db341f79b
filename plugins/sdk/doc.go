// Package sdk is what a keyraft plugin imports, and what the node's plugin
// host uses to talk to one.
//
// A storage plugin is one small main.go:
//
//	func main() {
//		store, err := mystore.Open(...)
//		if err != nil { ... }
//		sdk.ServeStorage(store) // store implements plugins.Storage
//	}
//
// and a crypto plugin serves a CryptoBackend with ServeCrypto. The plugin
// process speaks gRPC (the contracts in plugins/proto) over go-plugin's
// handshake, with mutual TLS negotiated per launch (AutoMTLS). Logs go to
// Logger(), which the node re-logs under the plugin's name.
//
// The package also holds the go-plugin glue both sides share: the
// handshake, the plugin map, and the adapters between the protobuf
// messages and the Go interfaces (plugins.Storage, CryptoBackend). The
// conformance suite in plugins/conformance checks an implementation of
// either interface, in process or behind a plugin process.
package sdk
