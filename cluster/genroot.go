package cluster

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyraft/keyraft/access"
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

// tokenLen is the length of a token made by access.NewToken.
const tokenLen = access.TokenLen

// ErrCeremonyInProgress is what every "already in progress" refusal of a
// share ceremony (generate-root, break-glass, rekey) matches with
// errors.Is. A start never replaces a ceremony in progress: that would
// throw away the shares its holders gave, and anyone may start one.
// Only its cancel, or its completion, ends it.
var ErrCeremonyInProgress = errors.New("cluster: a share ceremony is already in progress")

// ceremonyInProgress is the refusal of one kind of ceremony.
type ceremonyInProgress struct{ msg string }

func (e *ceremonyInProgress) Error() string        { return e.msg }
func (e *ceremonyInProgress) Is(target error) bool { return target == ErrCeremonyInProgress }

// The refusals of a start while one of the same kind is in progress on
// this node (Vault's "root generation already in progress").
var (
	ErrGenerateRootInProgress error = &ceremonyInProgress{"cluster: root generation already in progress on this node: give its shares, " +
		"or cancel it with DELETE sys/generate-root/attempt before starting another"}
	ErrRekeyInProgress error = &ceremonyInProgress{"cluster: rekey already in progress on this node: give its shares, " +
		"or cancel it with DELETE sys/rekey/init before starting another"}
	ErrBreakGlassInProgress error = &ceremonyInProgress{"cluster: break-glass attempt already in progress on this node: give its shares, " +
		"or cancel it with DELETE sys/break-glass/attempt before starting another"}
)

// GenerateRootInit starts a root token generation and returns its nonce,
// the one-time pad (base64, to decode the result) and how many current
// shares are needed. It returns ErrGenerateRootInProgress while one is in
// progress on this node (only GenerateRootCancel ends it early),
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
	defer n.rekeyMu.Unlock()
	if n.genRoot != nil {
		clear(pad)
		return "", "", 0, ErrGenerateRootInProgress
	}
	n.genRoot = op
	return nonce, base64.RawStdEncoding.EncodeToString(pad), cfg.Threshold, nil
}

// GenerateRootCancel drops the generation in progress and its shares. It
// returns the nonce of the one it cancelled ("" when there was none).
func (n *Node) GenerateRootCancel() (nonce string) {
	n.rekeyMu.Lock()
	op := n.genRoot
	n.genRoot = nil
	n.rekeyMu.Unlock()
	if op == nil {
		return ""
	}
	op.collector.Reset()
	return op.nonce
}

// GenerateRootProgress returns the generation in progress: its nonce and
// the shares given; ok is false when there is none.
func (n *Node) GenerateRootProgress() (nonce string, progress int, ok bool) {
	n.rekeyMu.Lock()
	op := n.genRoot
	n.rekeyMu.Unlock()
	if op == nil {
		return "", 0, false
	}
	return op.nonce, op.collector.Progress(), true
}

// endGenRoot drops op once it completed, unless a cancel (and maybe a new
// start) replaced it meanwhile: the new one is not this one's to end.
func (n *Node) endGenRoot(op *genRootOp) {
	n.rekeyMu.Lock()
	if n.genRoot == op {
		n.genRoot = nil
	}
	n.rekeyMu.Unlock()
	op.collector.Reset()
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
	// A malformed share is refused alone: dropping the shares already
	// given would let anyone who knows the nonce reset the ceremony.
	combined, err := op.collector.Add(share, cfg.Threshold)
	if err != nil {
		return op.collector.Progress(), cfg.Threshold, "", fmt.Errorf("%w: %v", ErrInvalidUnsealKey, err)
	}
	if combined == nil {
		return op.collector.Progress(), cfg.Threshold, "", nil
	}
	defer clear(combined)
	if err := n.checkCurrentKey(ctx, cfg, combined); err != nil {
		return 0, cfg.Threshold, "", err
	}
	token, err := access.NewToken()
	if err != nil {
		return 0, 0, "", err
	}
	entry, err := access.NewTokenEntry(token, []string{"root"}, time.Now().UTC())
	if err != nil {
		return 0, 0, "", err
	}
	entryJSON, _ := json.Marshal(entry)
	if _, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: access.TokenRecord(token), Value: entryJSON}}}); err != nil {
		return 0, 0, "", err
	}
	out := make([]byte, tokenLen)
	subtle.XORBytes(out, []byte(token), op.otp)
	n.endGenRoot(op)
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
