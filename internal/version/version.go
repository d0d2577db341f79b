// Package version holds keyraft's version: the one string that
// 'keyraft version' prints and that the API reports (sys/seal-status,
// sys/health: transport.Version is this value).
//
// A build sets it with the linker; without that it is the default below,
// the same in every binary:
//
//	go build -ldflags "-X github.com/keyraft/keyraft/internal/version.Version=1.2.3" ./cmd/keyraft
//
// 'make build' does so with VERSION (default: 'git describe --tags', when
// the checkout has a tag).
package version

// Version is the version of this build. It is a variable, not a
// constant, so that -ldflags -X can set it.
var Version = "0.1.0"
