package sdk

import (
	"context"
	"slices"
	"sync"

	"google.golang.org/grpc"

	pb "github.com/keyraft/keyraft/plugins/proto/pluginv1"
)

// CryptoClient calls a crypto plugin; it implements CryptoBackend. Whole
// calls fail with a *RemoteError, a *TransportError or an ErrProtocol
// error (wrong number of results); items fail with an *ItemError.
type CryptoClient struct {
	c     pb.CryptoClient
	done  <-chan struct{}
	calls *callMux

	capsMu sync.Mutex
	caps   *Capabilities // one process's answer does not change
}

var _ CryptoBackend = (*CryptoClient)(nil)

// NewCryptoClient returns a client on conn.
func NewCryptoClient(conn grpc.ClientConnInterface) *CryptoClient {
	c := pb.NewCryptoClient(conn)
	return &CryptoClient{c: c, calls: &callMux{open: func(ctx context.Context) (pb.Crypto_CallsClient, error) { return c.Calls(ctx) }}}
}

// Done is closed when the plugin process has exited (nil outside
// go-plugin).
func (c *CryptoClient) Done() <-chan struct{} { return c.done }

// Capabilities implements CryptoBackend.
// The answer is kept: a plugin process's capabilities do not change (a
// restarted plugin is a new client), and key creation asks every time.
func (c *CryptoClient) Capabilities(ctx context.Context) (Capabilities, error) {
	c.capsMu.Lock()
	kept := c.caps
	c.capsMu.Unlock()
	if kept != nil {
		return kept.clone(), nil
	}
	caps, err := c.capabilities(ctx)
	if err == nil {
		c.capsMu.Lock()
		c.caps = &caps
		c.capsMu.Unlock()
		caps = caps.clone()
	}
	return caps, err
}

func (c Capabilities) clone() Capabilities {
	out := Capabilities{KeepsMaterial: c.KeepsMaterial, KeyTypes: make([]KeyTypeCapability, len(c.KeyTypes))}
	for i, kt := range c.KeyTypes {
		out.KeyTypes[i] = KeyTypeCapability{KeyType: kt.KeyType, Operations: slices.Clone(kt.Operations)}
	}
	return out
}

func (c *CryptoClient) capabilities(ctx context.Context) (Capabilities, error) {
	resp, err := c.c.Capabilities(ctx, &pb.CapabilitiesRequest{})
	if err != nil {
		return Capabilities{}, fromStatus(err)
	}
	out := Capabilities{KeepsMaterial: resp.GetKeepsMaterial()}
	for _, kt := range resp.GetKeyTypes() {
		ops := make([]Operation, len(kt.GetOperations()))
		for i, o := range kt.GetOperations() {
			ops[i] = Operation(o)
		}
		out.KeyTypes = append(out.KeyTypes, KeyTypeCapability{KeyType: kt.GetKeyType(), Operations: ops})
	}
	return out, nil
}

// Generate implements CryptoBackend.
func (c *CryptoClient) Generate(ctx context.Context, keyType string) (GeneratedKey, error) {
	resp, err := c.c.Generate(ctx, &pb.GenerateRequest{KeyType: keyType})
	if err != nil {
		return GeneratedKey{}, fromStatus(err)
	}
	if len(resp.GetHandle()) == 0 {
		return GeneratedKey{}, protocolErrorf("generate returned no handle")
	}
	return GeneratedKey{Handle: resp.GetHandle(), Material: resp.GetMaterial(), PublicKey: resp.GetPublicKey()}, nil
}

// Destroy implements CryptoBackend.
func (c *CryptoClient) Destroy(ctx context.Context, key KeyRef) error {
	_, err := c.c.Destroy(ctx, &pb.DestroyRequest{Key: keyToProto(key)})
	return fromStatus(err)
}

// Encrypt implements CryptoBackend.
func (c *CryptoClient) Encrypt(ctx context.Context, items []EncryptItem) ([]EncryptResult, error) {
	req := &pb.EncryptRequest{Items: make([]*pb.EncryptItem, len(items))}
	for i, it := range items {
		req.Items[i] = &pb.EncryptItem{Key: keyToProto(it.Key), Plaintext: it.Plaintext, AssociatedData: it.AssocData}
	}
	resp, err := viaCalls(ctx, c.calls, &pb.CallRequest{Op: &pb.CallRequest_Encrypt{Encrypt: req}},
		(*pb.CallResponse).GetEncrypt, func() (*pb.EncryptResponse, error) { return c.c.Encrypt(ctx, req) })
	if err != nil {
		return nil, err
	}
	return EncryptResultsFromProto(len(items), resp.GetResults())
}

// Decrypt implements CryptoBackend.
func (c *CryptoClient) Decrypt(ctx context.Context, items []DecryptItem) ([]DecryptResult, error) {
	req := &pb.DecryptRequest{Items: make([]*pb.DecryptItem, len(items))}
	for i, it := range items {
		req.Items[i] = &pb.DecryptItem{Key: keyToProto(it.Key), Ciphertext: it.Ciphertext, AssociatedData: it.AssocData}
	}
	resp, err := viaCalls(ctx, c.calls, &pb.CallRequest{Op: &pb.CallRequest_Decrypt{Decrypt: req}},
		(*pb.CallResponse).GetDecrypt, func() (*pb.DecryptResponse, error) { return c.c.Decrypt(ctx, req) })
	if err != nil {
		return nil, err
	}
	rs := resp.GetResults()
	if err := checkCount("decrypt", len(items), len(rs)); err != nil {
		return nil, err
	}
	if err := checkResults("decrypt", rs); err != nil {
		return nil, err
	}
	out := make([]DecryptResult, len(rs))
	for i, r := range rs {
		out[i] = DecryptResult{Plaintext: r.GetPlaintext(), Err: itemErrFromProto(r.GetError())}
		if out[i].Err == nil && out[i].Plaintext == nil {
			out[i].Plaintext = []byte{}
		}
	}
	return out, nil
}

// Sign implements CryptoBackend.
func (c *CryptoClient) Sign(ctx context.Context, items []SignItem) ([]SignResult, error) {
	req := &pb.SignRequest{Items: make([]*pb.SignItem, len(items))}
	for i, it := range items {
		req.Items[i] = &pb.SignItem{Key: keyToProto(it.Key), Message: it.Message}
	}
	resp, err := viaCalls(ctx, c.calls, &pb.CallRequest{Op: &pb.CallRequest_Sign{Sign: req}},
		(*pb.CallResponse).GetSign, func() (*pb.SignResponse, error) { return c.c.Sign(ctx, req) })
	if err != nil {
		return nil, err
	}
	rs := resp.GetResults()
	if err := checkCount("sign", len(items), len(rs)); err != nil {
		return nil, err
	}
	if err := checkResults("sign", rs); err != nil {
		return nil, err
	}
	out := make([]SignResult, len(rs))
	for i, r := range rs {
		out[i] = SignResult{Signature: r.GetSignature(), Err: itemErrFromProto(r.GetError())}
		if out[i].Err == nil && len(out[i].Signature) == 0 {
			return nil, protocolErrorf("sign result %d has neither signature nor error", i)
		}
	}
	return out, nil
}

// Verify implements CryptoBackend.
func (c *CryptoClient) Verify(ctx context.Context, items []VerifyItem) ([]VerifyResult, error) {
	req := &pb.VerifyRequest{Items: make([]*pb.VerifyItem, len(items))}
	for i, it := range items {
		req.Items[i] = &pb.VerifyItem{Key: keyToProto(it.Key), Message: it.Message, Signature: it.Signature}
	}
	resp, err := viaCalls(ctx, c.calls, &pb.CallRequest{Op: &pb.CallRequest_Verify{Verify: req}},
		(*pb.CallResponse).GetVerify, func() (*pb.VerifyResponse, error) { return c.c.Verify(ctx, req) })
	if err != nil {
		return nil, err
	}
	rs := resp.GetResults()
	if err := checkCount("verify", len(items), len(rs)); err != nil {
		return nil, err
	}
	if err := checkResults("verify", rs); err != nil {
		return nil, err
	}
	out := make([]VerifyResult, len(rs))
	for i, r := range rs {
		out[i] = VerifyResult{Err: itemErrFromProto(r.GetError())}
		out[i].Valid = r.GetValid() && out[i].Err == nil
	}
	return out, nil
}

// HMAC implements CryptoBackend.
func (c *CryptoClient) HMAC(ctx context.Context, items []HMACItem) ([]HMACResult, error) {
	req := &pb.HMACRequest{Items: make([]*pb.HMACItem, len(items))}
	for i, it := range items {
		req.Items[i] = &pb.HMACItem{Key: keyToProto(it.Key), Message: it.Message}
	}
	resp, err := viaCalls(ctx, c.calls, &pb.CallRequest{Op: &pb.CallRequest_Hmac{Hmac: req}},
		(*pb.CallResponse).GetHmac, func() (*pb.HMACResponse, error) { return c.c.HMAC(ctx, req) })
	if err != nil {
		return nil, err
	}
	rs := resp.GetResults()
	if err := checkCount("hmac", len(items), len(rs)); err != nil {
		return nil, err
	}
	if err := checkResults("hmac", rs); err != nil {
		return nil, err
	}
	out := make([]HMACResult, len(rs))
	for i, r := range rs {
		out[i] = HMACResult{MAC: r.GetMac(), Err: itemErrFromProto(r.GetError())}
		if out[i].Err == nil && len(out[i].MAC) == 0 {
			return nil, protocolErrorf("hmac result %d has neither mac nor error", i)
		}
	}
	return out, nil
}

// EncryptResultsFromProto checks and converts an encrypt answer for n
// items.
func EncryptResultsFromProto(n int, rs []*pb.EncryptResult) ([]EncryptResult, error) {
	if err := checkCount("encrypt", n, len(rs)); err != nil {
		return nil, err
	}
	if err := checkResults("encrypt", rs); err != nil {
		return nil, err
	}
	out := make([]EncryptResult, len(rs))
	for i, r := range rs {
		out[i] = EncryptResult{Ciphertext: r.GetCiphertext(), Err: itemErrFromProto(r.GetError())}
		if out[i].Err == nil && len(out[i].Ciphertext) == 0 {
			return nil, protocolErrorf("encrypt result %d has neither ciphertext nor error", i)
		}
	}
	return out, nil
}
