package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Checkpoint is a signed statement by the cluster that the chain reached
// Seq with Hash at Time. Anyone with the cluster's audit public key can
// check an exported segment that ends at or passes a checkpoint, without
// the cluster.
type Checkpoint struct {
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	Signature string    `json:"signature"` // base64 Ed25519 over CheckpointMessage
}

// CheckpointMessage is the byte string a checkpoint signature covers.
func CheckpointMessage(seq uint64, hash string, t time.Time) []byte {
	return fmt.Appendf(nil, "keyraft-audit-checkpoint-v1\n%d\n%s\n%s", seq, hash, t.UTC().Format(time.RFC3339Nano))
}

// Sign fills in the signature.
func (c *Checkpoint) Sign(priv ed25519.PrivateKey) {
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, CheckpointMessage(c.Seq, c.Hash, c.Time)))
}

// Verify checks the signature with the cluster's audit public key.
func (c *Checkpoint) Verify(pub ed25519.PublicKey) bool {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(pub, CheckpointMessage(c.Seq, c.Hash, c.Time), sig)
}

// DecodeCheckpoint parses a checkpoint strictly.
func DecodeCheckpoint(b []byte) (*Checkpoint, error) {
	if len(b) > 4096 {
		return nil, fmt.Errorf("%w: checkpoint of %d bytes", ErrMalformed, len(b))
	}
	var c Checkpoint
	if err := strictUnmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %v", ErrMalformed, err)
	}
	if c.Seq == 0 || len(c.Hash) != 64 || c.Signature == "" {
		return nil, fmt.Errorf("%w: checkpoint needs seq, hash and signature", ErrMalformed)
	}
	return &c, nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the object")
	}
	return nil
}
