package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
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

// runBinary runs RunBinary on a plugin built from pkg and returns the
// failures and the report.
func runBinary(t *testing.T, kind, pkg string, args ...string) (int, string) {
	bin, _ := plugintest.Build(t, t.TempDir(), pkg)
	var out bytes.Buffer
	failed, err := conformance.RunBinary(context.Background(), kind, bin, args, &out)
	if err != nil {
		t.Fatalf("RunBinary: %v", err)
	}
	return failed, out.String()
}

func TestRunBinaryBolt(t *testing.T) {
	failed, out := runBinary(t, conformance.KindStorage, "github.com/keyraft/keyraft/cmd/keyraft-plugin-bolt", "-path", conformance.DirPlaceholder+"/state.db")
	if failed != 0 || !strings.Contains(out, "PASS  storage/CompactLeavesNoDeletedValue") || !strings.Contains(out, "PASS  storage/Compact ") || !strings.Contains(out, "PASS  storage/DurableAcrossCrash") || !strings.Contains(out, "PASS  storage/ViewConsistentWhileWriting") {
		t.Fatalf("%d failed:\n%s", failed, out)
	}
}

func TestRunBinarySoft(t *testing.T) {
	failed, out := runBinary(t, conformance.KindCrypto, "github.com/keyraft/keyraft/cmd/keyraft-plugin-soft")
	if failed != 0 || !strings.Contains(out, "PASS  crypto/aes256-gcm96/ResultsInOrder") || !strings.Contains(out, "SKIP  crypto/KeysSurviveCrash") {
		t.Fatalf("%d failed:\n%s", failed, out)
	}
}

// TestRunBinaryCatchesMisorder: a plugin that answers a batch out of
// order fails the order checks, and the report says which.
func TestRunBinaryCatchesMisorder(t *testing.T) {
	failed, out := runBinary(t, conformance.KindCrypto, "github.com/keyraft/keyraft/plugins/conformance/testdata/misorder")
	if failed == 0 || !strings.Contains(out, "FAIL  crypto/aes256-gcm96/ResultsInOrder") || !strings.Contains(out, "FAIL: ") {
		t.Fatalf("the suite did not catch a plugin answering out of order (%d failed):\n%s", failed, out)
	}
	if !strings.Contains(out, "PASS  crypto/hmac-sha256/HMAC") {
		t.Fatalf("checks the plugin keeps were not passed:\n%s", out)
	}
}

func TestRunBinaryBadInput(t *testing.T) {
	if _, err := conformance.RunBinary(context.Background(), "database", "/bin/true", nil, io.Discard); !errors.Is(err, conformance.ErrUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := conformance.RunBinary(context.Background(), conformance.KindCrypto, filepath.Join(t.TempDir(), "missing"), nil, io.Discard); err == nil {
		t.Fatal("a missing binary ran")
	}
	// A binary that is not a plugin is a failed check, with the host's reason.
	var out bytes.Buffer
	failed, err := conformance.RunBinary(context.Background(), conformance.KindCrypto, "/bin/true", nil, &out)
	if err != nil || failed == 0 || !strings.Contains(out.String(), "starting the plugin") {
		t.Fatalf("/bin/true: %d failed, %v:\n%s", failed, err, out.String())
	}
}

// TestRunBinaryCatchesAmnesia: a storage plugin that loses its data on
// restart passes every check but the crash check.
func TestRunBinaryCatchesAmnesia(t *testing.T) {
	failed, out := runBinary(t, conformance.KindStorage, "github.com/keyraft/keyraft/plugins/conformance/testdata/amnesia", "-path", conformance.DirPlaceholder+"/db")
	if failed != 1 || !strings.Contains(out, "FAIL  storage/DurableAcrossCrash") {
		t.Fatalf("want exactly the crash check to fail (%d failed):\n%s", failed, out)
	}
}

// TestRunBinaryCatchesMemoryKeys: a crypto plugin that claims to keep its
// keys but holds them in memory fails the crash check alone.
func TestRunBinaryCatchesMemoryKeys(t *testing.T) {
	failed, out := runBinary(t, conformance.KindCrypto, "github.com/keyraft/keyraft/plugins/conformance/testdata/memkeys")
	if failed != 1 || !strings.Contains(out, "FAIL  crypto/KeysSurviveCrash") {
		t.Fatalf("want exactly the crash check to fail (%d failed):\n%s", failed, out)
	}
}
