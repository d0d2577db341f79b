package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

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
