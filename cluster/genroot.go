package cluster

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/keyraft/keyraft/seal"
)

// genRootOp is a root-token generation in progress (Vault's
// sys/generate-root): the token is released only to a threshold of the
// current unseal (or recovery) share holders, XORed with a one-time pad
// the starter holds, so nobody in between sees it.
type genRootOp struct {
	mu        sync.Mutex
	nonce     string
	otp       []byte
	collector seal.ShareCollector
}

// tokenLen is the length of a token made by NewToken.
const tokenLen = 46

// GenerateRootInit starts a root token generation and returns its nonce,
// the one-time pad (base64, to decode the result) and how many current
// shares are needed. A new start replaces the one in progress. It returns
// ErrSealed or ErrNotInitialized.
func (n *Node) GenerateRootInit() (nonce, otp string, required int, err error) {
	if n.barrier.Sealed() {
		return "", "", 0, ErrSealed
	}
	cfg, err := n.sealConfig()
	if err != nil || cfg == nil {
		return "", "", 0, ErrNotInitialized
	}
	pad := make([]byte, tokenLen)
	if _, err := rand.Read(pad); err != nil {
		return "", "", 0, err
	}
	if nonce, err = randomID(); err != nil {
		return "", "", 0, err
	}
	op := &genRootOp{nonce: nonce, otp: pad}
	n.rekeyMu.Lock()
	if old := n.genRoot; old != nil {
		old.collector.Reset()
	}
	n.genRoot = op
	n.rekeyMu.Unlock()
	return nonce, base64.RawStdEncoding.EncodeToString(pad), cfg.Threshold, nil
}

// GenerateRootCancel drops the generation in progress.
func (n *Node) GenerateRootCancel() {
	n.rekeyMu.Lock()
	defer n.rekeyMu.Unlock()
	if n.genRoot != nil {
		n.genRoot.collector.Reset()
		n.genRoot = nil
	}
}

// GenerateRootUpdate takes one current share. At the threshold it checks
// the shares, creates a root token and returns it encoded: base64 of the
// token XOR the one-time pad (DecodeRootToken reverses it). It returns
// ErrRekeyNonce for an unknown nonce, ErrInvalidUnsealKey, or a commit
// error.
func (n *Node) GenerateRootUpdate(ctx context.Context, nonce string, share []byte) (progress, required int, encoded string, err error) {
	n.rekeyMu.Lock()
	op := n.genRoot
	n.rekeyMu.Unlock()
	if op == nil || subtle.ConstantTimeCompare([]byte(op.nonce), []byte(nonce)) != 1 {
		return 0, 0, "", ErrRekeyNonce
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	cfg, err := n.sealConfig()
	if err != nil || cfg == nil {
		return 0, 0, "", ErrNotInitialized
	}
	combined, err := op.collector.Add(share, cfg.Threshold)
	if err != nil {
		op.collector.Reset()
		return 0, cfg.Threshold, "", fmt.Errorf("%w: %v", ErrInvalidUnsealKey, err)
	}
	if combined == nil {
		return op.collector.Progress(), cfg.Threshold, "", nil
	}
	defer clear(combined)
	if err := n.checkCurrentKey(ctx, cfg, combined); err != nil {
		return 0, cfg.Threshold, "", err
	}
	token, err := NewToken()
	if err != nil {
		return 0, 0, "", err
	}
	entry, err := newTokenEntry(token, []string{"root"}, time.Now().UTC())
	if err != nil {
		return 0, 0, "", err
	}
	entryJSON, _ := json.Marshal(entry)
	if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: prefixToken + hashToken(token), Value: entryJSON}}}); err != nil {
		return 0, 0, "", err
	}
	out := make([]byte, tokenLen)
	subtle.XORBytes(out, []byte(token), op.otp)
	n.GenerateRootCancel()
	n.log.Warn("a new root token was generated from the shares", "accessor", entry.Accessor)
	return 0, cfg.Threshold, base64.RawStdEncoding.EncodeToString(out), nil
}

// DecodeRootToken reverses GenerateRootUpdate's encoding with the pad.
func DecodeRootToken(encoded, otp string) (string, error) {
	e, err1 := base64.RawStdEncoding.DecodeString(encoded)
	p, err2 := base64.RawStdEncoding.DecodeString(otp)
	if err1 != nil || err2 != nil || len(e) != len(p) {
		return "", fmt.Errorf("%w: encoded token and one-time pad do not match", ErrInvalidRequest)
	}
	out := make([]byte, len(e))
	subtle.XORBytes(out, e, p)
	return string(out), nil
}
