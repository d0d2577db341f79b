package sdk

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
)

// CryptoServer serves a CryptoBackend over the crypto contract.
type CryptoServer struct {
	pb.UnimplementedCryptoServer
	impl CryptoBackend
}

// NewCryptoServer returns the gRPC server of impl.
func NewCryptoServer(impl CryptoBackend) *CryptoServer { return &CryptoServer{impl: impl} }

// Capabilities implements the crypto contract.
func (s *CryptoServer) Capabilities(ctx context.Context, _ *pb.CapabilitiesRequest) (*pb.CapabilitiesResponse, error) {
	c, err := s.impl.Capabilities(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.CapabilitiesResponse{KeepsMaterial: c.KeepsMaterial}
	for _, kt := range c.KeyTypes {
		ops := make([]string, len(kt.Operations))
		for i, o := range kt.Operations {
			ops[i] = string(o)
		}
		resp.KeyTypes = append(resp.KeyTypes, &pb.KeyTypeCapability{KeyType: kt.KeyType, Operations: ops})
	}
	return resp, nil
}

// Generate implements the crypto contract.
func (s *CryptoServer) Generate(ctx context.Context, req *pb.GenerateRequest) (*pb.GenerateResponse, error) {
	k, err := s.impl.Generate(ctx, req.GetKeyType())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GenerateResponse{Handle: k.Handle, Material: k.Material, PublicKey: k.PublicKey}, nil
}

// Destroy implements the crypto contract.
func (s *CryptoServer) Destroy(ctx context.Context, req *pb.DestroyRequest) (*pb.DestroyResponse, error) {
	if err := s.impl.Destroy(ctx, keyFromProto(req.GetKey())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.DestroyResponse{}, nil
}

// serverCount checks that a backend kept the contract of one result per
// item before the answer goes out.
func serverCount(op string, items, results int) error {
	if items != results {
		return status.Errorf(codes.Internal, "%s: backend returned %d results for %d items", op, results, items)
	}
	return nil
}

// Encrypt implements the crypto contract.
func (s *CryptoServer) Encrypt(ctx context.Context, req *pb.EncryptRequest) (*pb.EncryptResponse, error) {
	items := make([]EncryptItem, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = EncryptItem{Key: keyFromProto(it.GetKey()), Plaintext: it.GetPlaintext(), AssocData: it.GetAssociatedData()}
	}
	rs, err := s.impl.Encrypt(ctx, items)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := serverCount("encrypt", len(items), len(rs)); err != nil {
		return nil, err
	}
	resp := &pb.EncryptResponse{Results: make([]*pb.EncryptResult, len(rs))}
	for i, r := range rs {
		resp.Results[i] = &pb.EncryptResult{Ciphertext: r.Ciphertext, Error: itemErrToProto(r.Err)}
	}
	return resp, nil
}

// Decrypt implements the crypto contract.
func (s *CryptoServer) Decrypt(ctx context.Context, req *pb.DecryptRequest) (*pb.DecryptResponse, error) {
	items := make([]DecryptItem, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = DecryptItem{Key: keyFromProto(it.GetKey()), Ciphertext: it.GetCiphertext(), AssocData: it.GetAssociatedData()}
	}
	rs, err := s.impl.Decrypt(ctx, items)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := serverCount("decrypt", len(items), len(rs)); err != nil {
		return nil, err
	}
	resp := &pb.DecryptResponse{Results: make([]*pb.DecryptResult, len(rs))}
	for i, r := range rs {
		resp.Results[i] = &pb.DecryptResult{Plaintext: r.Plaintext, Error: itemErrToProto(r.Err)}
	}
	return resp, nil
}

// Sign implements the crypto contract.
func (s *CryptoServer) Sign(ctx context.Context, req *pb.SignRequest) (*pb.SignResponse, error) {
	items := make([]SignItem, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = SignItem{Key: keyFromProto(it.GetKey()), Message: it.GetMessage()}
	}
	rs, err := s.impl.Sign(ctx, items)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := serverCount("sign", len(items), len(rs)); err != nil {
		return nil, err
	}
	resp := &pb.SignResponse{Results: make([]*pb.SignResult, len(rs))}
	for i, r := range rs {
		resp.Results[i] = &pb.SignResult{Signature: r.Signature, Error: itemErrToProto(r.Err)}
	}
	return resp, nil
}

// Verify implements the crypto contract.
func (s *CryptoServer) Verify(ctx context.Context, req *pb.VerifyRequest) (*pb.VerifyResponse, error) {
	items := make([]VerifyItem, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = VerifyItem{Key: keyFromProto(it.GetKey()), Message: it.GetMessage(), Signature: it.GetSignature()}
	}
	rs, err := s.impl.Verify(ctx, items)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := serverCount("verify", len(items), len(rs)); err != nil {
		return nil, err
	}
	resp := &pb.VerifyResponse{Results: make([]*pb.VerifyResult, len(rs))}
	for i, r := range rs {
		resp.Results[i] = &pb.VerifyResult{Valid: r.Valid && r.Err == nil, Error: itemErrToProto(r.Err)}
	}
	return resp, nil
}

// HMAC implements the crypto contract.
func (s *CryptoServer) HMAC(ctx context.Context, req *pb.HMACRequest) (*pb.HMACResponse, error) {
	items := make([]HMACItem, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = HMACItem{Key: keyFromProto(it.GetKey()), Message: it.GetMessage()}
	}
	rs, err := s.impl.HMAC(ctx, items)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := serverCount("hmac", len(items), len(rs)); err != nil {
		return nil, err
	}
	resp := &pb.HMACResponse{Results: make([]*pb.HMACResult, len(rs))}
	for i, r := range rs {
		resp.Results[i] = &pb.HMACResult{Mac: r.MAC, Error: itemErrToProto(r.Err)}
	}
	return resp, nil
}

// maxCallsInFlight bounds the calls one Calls stream runs at once; the
// stream stops reading past it (HTTP/2 flow control then holds the
// caller), so a caller cannot make the plugin hold unbounded work.
const maxCallsInFlight = 64

// Calls implements the crypto contract: every request runs as the unary
// method of its kind would, concurrently, and its answer is sent when
// ready.
func (s *CryptoServer) Calls(stream pb.Crypto_CallsServer) error {
	ctx := stream.Context()
	var sendMu sync.Mutex
	var sendErr error
	slots := make(chan struct{}, maxCallsInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		req, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			cctx, cancel := ctx, context.CancelFunc(func() {})
			if ms := req.GetTimeoutMs(); ms > 0 {
				cctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
			}
			resp := s.call(cctx, req)
			cancel()
			// Encoded here, so that an answer that does not encode fails
			// its own call, as a unary answer would, and not the stream.
			msg := &grpc.PreparedMsg{}
			if err := msg.Encode(stream, resp); err != nil {
				resp = &pb.CallResponse{Id: req.GetId(), Result: &pb.CallResponse_Error{Error: &pb.CallError{
					Code: uint32(codes.Internal), Message: strings.ToValidUTF8("grpc: error while marshaling: "+err.Error(), "\uFFFD")}}}
				if err := msg.Encode(stream, resp); err != nil {
					return
				}
			}
			sendMu.Lock()
			defer sendMu.Unlock()
			if sendErr == nil {
				sendErr = stream.SendMsg(msg)
			}
		}()
	}
}

// call runs one request of a Calls stream.
func (s *CryptoServer) call(ctx context.Context, req *pb.CallRequest) *pb.CallResponse {
	resp := &pb.CallResponse{Id: req.GetId()}
	var err error
	switch op := req.GetOp().(type) {
	case *pb.CallRequest_Encrypt:
		var r *pb.EncryptResponse
		if r, err = s.Encrypt(ctx, op.Encrypt); err == nil {
			resp.Result = &pb.CallResponse_Encrypt{Encrypt: r}
		}
	case *pb.CallRequest_Decrypt:
		var r *pb.DecryptResponse
		if r, err = s.Decrypt(ctx, op.Decrypt); err == nil {
			resp.Result = &pb.CallResponse_Decrypt{Decrypt: r}
		}
	case *pb.CallRequest_Sign:
		var r *pb.SignResponse
		if r, err = s.Sign(ctx, op.Sign); err == nil {
			resp.Result = &pb.CallResponse_Sign{Sign: r}
		}
	case *pb.CallRequest_Verify:
		var r *pb.VerifyResponse
		if r, err = s.Verify(ctx, op.Verify); err == nil {
			resp.Result = &pb.CallResponse_Verify{Verify: r}
		}
	case *pb.CallRequest_Hmac:
		var r *pb.HMACResponse
		if r, err = s.HMAC(ctx, op.Hmac); err == nil {
			resp.Result = &pb.CallResponse_Hmac{Hmac: r}
		}
	default:
		err = status.Error(codes.InvalidArgument, "call carries no known operation")
	}
	if err != nil {
		st, _ := status.FromError(toStatus(err))
		// A unary status travels percent-encoded; a proto string must be
		// UTF-8.
		resp.Result = &pb.CallResponse_Error{Error: &pb.CallError{Code: uint32(st.Code()), Message: strings.ToValidUTF8(st.Message(), "\uFFFD")}}
	}
	return resp
}
