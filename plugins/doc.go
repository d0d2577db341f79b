// Package plugins holds the contracts between a keyraft node and its
// backends. A backend is anything that can be swapped without touching the
// server: today the storage that holds the state machine's records; the
// crypto backends and the go-plugin host that runs backends as separate
// processes come with the plugin work.
//
// The contracts are deliberately small so that they can be carried over
// gRPC to a plugin process unchanged: plain byte slices in, plain byte
// slices out, no callbacks into the node.
package plugins
