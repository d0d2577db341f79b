package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
)

// noUnary is an SDK server whose unary uses fail: only the Calls stream
// (promoted from the embedded server) works.
type noUnary struct{ *sdk.CryptoServer }

func (noUnary) Encrypt(context.Context, *pb.EncryptRequest) (*pb.EncryptResponse, error) {
	return nil, status.Error(codes.FailedPrecondition, "unary Encrypt used")
}

func (noUnary) Decrypt(context.Context, *pb.DecryptRequest) (*pb.DecryptResponse, error) {
	return nil, status.Error(codes.FailedPrecondition, "unary Decrypt used")
}

// Concurrent uses share one stream and each gets its own answer.
func TestCallsStreamCarriesConcurrentUses(t *testing.T) {
	ctx := context.Background()
	be := soft.New()
	k, _ := be.Generate(ctx, sdk.KeyAES256GCM96)
	key := sdk.KeyRef{Handle: k.Handle, Material: k.Material}
	c := sdk.NewCryptoClient(pair(t, func(s *grpc.Server) { pb.RegisterCryptoServer(s, noUnary{sdk.NewCryptoServer(be)}) }))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				pt := []byte(fmt.Sprintf("goroutine %d call %d", g, i))
				enc, err := c.Encrypt(ctx, []sdk.EncryptItem{{Key: key, Plaintext: pt}})
				if err != nil {
					errs <- err
					return
				}
				dec, err := c.Decrypt(ctx, []sdk.DecryptItem{{Key: key, Ciphertext: enc[0].Ciphertext}})
				if err != nil {
					errs <- err
					return
				}
				if string(dec[0].Plaintext) != string(pt) {
					errs <- fmt.Errorf("answer of another call: %q, want %q", dec[0].Plaintext, pt)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A call waiting on a stream whose server went away fails as a transport
// error (the host then checks whether the process died), not a hang.
func TestCallsStreamBreakIsATransportError(t *testing.T) {
	ctx := context.Background()
	be := soft.New()
	k, _ := be.Generate(ctx, sdk.KeyAES256GCM96)
	key := sdk.KeyRef{Handle: k.Handle, Material: k.Material}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(sdk.ServerOptions()...)
	pb.RegisterCryptoServer(srv, sdk.NewCryptoServer(be))
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), append(sdk.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := sdk.NewCryptoClient(conn)
	if _, err := c.Encrypt(ctx, []sdk.EncryptItem{{Key: key, Plaintext: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	_, err = c.Encrypt(ctx, []sdk.EncryptItem{{Key: key, Plaintext: []byte("x")}})
	var te *sdk.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("call after the server stopped: %v, want a *sdk.TransportError", err)
	}
	// A caller's deadline ends its wait like a unary call's.
	dctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Encrypt(dctx, []sdk.EncryptItem{{Key: key, Plaintext: []byte("x")}}); !errors.As(err, &te) {
		t.Fatalf("cancelled call: %v, want a *sdk.TransportError", err)
	}
}

// deadlineSeen records the deadline the backend's context carried.
type deadlineSeen struct {
	soft.Backend
	mu   sync.Mutex
	left time.Duration
	has  bool
}

func (d *deadlineSeen) HMAC(ctx context.Context, items []sdk.HMACItem) ([]sdk.HMACResult, error) {
	dl, ok := ctx.Deadline()
	d.mu.Lock()
	d.has, d.left = ok, time.Until(dl)
	d.mu.Unlock()
	return d.Backend.HMAC(ctx, items)
}

// badUTF8 fails Encrypt with a message that is not UTF-8 (a proto string
// cannot carry it).
type badUTF8 struct{ soft.Backend }

func (badUTF8) Encrypt(context.Context, []sdk.EncryptItem) ([]sdk.EncryptResult, error) {
	return nil, status.Error(codes.InvalidArgument, "bad key \xff")
}

// The caller's deadline reaches the plugin, so abandoned work stops there
// as it does for a unary call.
func TestCallsStreamCarriesTheDeadline(t *testing.T) {
	ctx := context.Background()
	be := &deadlineSeen{}
	k, _ := be.Generate(ctx, sdk.KeyHMACSHA256)
	c := sdk.NewCryptoClient(pair(t, func(s *grpc.Server) { pb.RegisterCryptoServer(s, noUnary{sdk.NewCryptoServer(be)}) }))
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := c.HMAC(dctx, []sdk.HMACItem{{Key: sdk.KeyRef{Handle: k.Handle, Material: k.Material}, Message: []byte("m")}}); err != nil {
		t.Fatal(err)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if !be.has || be.left <= 0 || be.left > 20*time.Second {
		t.Fatalf("backend saw deadline=%v with %v left, want one within the caller's 20s", be.has, be.left)
	}
}

// An answer that cannot be encoded fails its own call, like a unary call,
// and leaves the stream to the others.
func TestCallsStreamBadAnswerFailsOnlyItsCall(t *testing.T) {
	ctx := context.Background()
	be := badUTF8{}
	k, _ := be.Generate(ctx, sdk.KeyHMACSHA256)
	c := sdk.NewCryptoClient(pair(t, func(s *grpc.Server) { pb.RegisterCryptoServer(s, sdk.NewCryptoServer(be)) }))
	_, err := c.Encrypt(ctx, []sdk.EncryptItem{{Key: sdk.KeyRef{Handle: k.Handle, Material: k.Material}, Plaintext: []byte("x")}})
	var re *sdk.RemoteError
	if !errors.As(err, &re) || re.Code != codes.InvalidArgument || !strings.HasPrefix(re.Msg, "bad key ") {
		t.Fatalf("the failing call: %v, want the backend's InvalidArgument as a unary call gives it", err)
	}
	if _, err := c.HMAC(ctx, []sdk.HMACItem{{Key: sdk.KeyRef{Handle: k.Handle, Material: k.Material}, Message: []byte("m")}}); err != nil {
		t.Fatalf("a call after the bad answer: %v", err)
	}
}

// A plugin address that accepts and never speaks holds a call no longer
// than its deadline, while the stream is being opened.
func TestCallsStreamOpenHonoursTheDeadline(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), append(sdk.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := sdk.NewCryptoClient(conn)
	for i := 0; i < 2; i++ { // the second caller waits on the same opening
		dctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		_, err := c.HMAC(dctx, []sdk.HMACItem{{Message: []byte("m")}})
		cancel()
		var te *sdk.TransportError
		if !errors.As(err, &te) || te.Code != codes.DeadlineExceeded {
			t.Fatalf("call %d: %v, want a DeadlineExceeded *sdk.TransportError", i, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("call %d returned after %v, past its 300ms deadline", i, d)
		}
	}
}
