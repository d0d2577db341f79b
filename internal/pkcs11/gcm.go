package pkcs11

import (
	"bytes"
	"fmt"

	cryptoki "github.com/miekg/pkcs11"
)

// AES-GCM as keyraft uses it: a 96-bit IV drawn by the caller for each
// encryption and a 128-bit tag appended to the ciphertext.
const (
	GCMIVSize  = 12
	GCMTagBits = 128
	GCMTagSize = GCMTagBits / 8
)

// CheckGCMIV refuses an IV that is not exactly GCMIVSize bytes. Every
// AES-GCM call goes through it: miekg/pkcs11 passes an empty IV as a NULL
// pointer with length 0, and SoftHSM then encrypts without complaint
// under a fixed IV — nonce reuse, which breaks GCM.
func CheckGCMIV(iv []byte) error {
	if len(iv) != GCMIVSize {
		return fmt.Errorf("refusing AES-GCM with a %d-byte IV (want exactly %d)", len(iv), GCMIVSize)
	}
	return nil
}

// gcmMechanism builds CKM_AES_GCM for one call, after CheckGCMIV. The
// caller frees the params after the call.
func gcmMechanism(iv, aad []byte) ([]*cryptoki.Mechanism, *cryptoki.GCMParams, error) {
	if err := CheckGCMIV(iv); err != nil {
		return nil, nil, err
	}
	p := cryptoki.NewGCMParams(iv, aad, GCMTagBits)
	return []*cryptoki.Mechanism{cryptoki.NewMechanism(cryptoki.CKM_AES_GCM, p)}, p, nil
}

// GCMEncrypt encrypts pt under key with the caller's IV. It returns the
// ciphertext with the tag appended, and the IV the token used: some HSMs
// ignore the caller's IV and write back their own, which is then the one
// to record (checked to be 12 bytes as well).
func GCMEncrypt(c *cryptoki.Ctx, sh cryptoki.SessionHandle, key cryptoki.ObjectHandle, iv, aad, pt []byte) (ct, usedIV []byte, err error) {
	mech, params, err := gcmMechanism(iv, aad)
	if err != nil {
		return nil, nil, err
	}
	defer params.Free()
	if err := c.EncryptInit(sh, mech, key); err != nil {
		return nil, nil, fmt.Errorf("C_EncryptInit(CKM_AES_GCM): %w", err)
	}
	if ct, err = c.Encrypt(sh, pt); err != nil {
		return nil, nil, fmt.Errorf("C_Encrypt(CKM_AES_GCM): %w", err)
	}
	if len(ct) != len(pt)+GCMTagSize {
		return nil, nil, fmt.Errorf("C_Encrypt(CKM_AES_GCM) returned %d bytes for %d bytes of plaintext, want plaintext + %d-byte tag", len(ct), len(pt), GCMTagSize)
	}
	usedIV = params.IV()
	if err := CheckGCMIV(usedIV); err != nil {
		return nil, nil, fmt.Errorf("token reported the IV it used: %w", err)
	}
	if !bytes.Equal(usedIV, iv) {
		usedIV = bytes.Clone(usedIV)
	}
	return ct, usedIV, nil
}

// GCMDecrypt authenticates and decrypts ct (tag appended). A C_Decrypt
// failure is a *DecryptError: tokens disagree on the return value of a
// failed tag check, so the caller decides what it means.
func GCMDecrypt(c *cryptoki.Ctx, sh cryptoki.SessionHandle, key cryptoki.ObjectHandle, iv, aad, ct []byte) ([]byte, error) {
	mech, params, err := gcmMechanism(iv, aad)
	if err != nil {
		return nil, err
	}
	defer params.Free()
	if err := c.DecryptInit(sh, mech, key); err != nil {
		return nil, fmt.Errorf("C_DecryptInit(CKM_AES_GCM): %w", err)
	}
	pt, err := c.Decrypt(sh, ct)
	if err != nil {
		return nil, &DecryptError{Mech: "CKM_AES_GCM", Err: err}
	}
	if len(pt) != len(ct)-GCMTagSize {
		return nil, fmt.Errorf("C_Decrypt(CKM_AES_GCM) returned %d bytes for %d bytes of ciphertext", len(pt), len(ct))
	}
	if !bytes.Equal(params.IV(), iv) {
		return nil, fmt.Errorf("the token decrypted with another IV than the ciphertext's")
	}
	return pt, nil
}

// DecryptError is a C_Decrypt that failed: the input was rejected (a
// failed tag or padding check) or the token is failing. Err is the
// PKCS#11 return value.
type DecryptError struct {
	Mech string
	Err  error
}

func (e *DecryptError) Error() string { return "C_Decrypt(" + e.Mech + "): " + e.Err.Error() }
func (e *DecryptError) Unwrap() error { return e.Err }
