package pkcs11

import (
	"bytes"
	"fmt"

	cryptoki "github.com/miekg/pkcs11"

	ipk "github.com/keyraft/keyraft/internal/pkcs11"
	"github.com/keyraft/keyraft/seal"
)

// gcmMechanism builds the CKM_AES_GCM mechanism for one call, refusing any
// IV that is not exactly 12 bytes (see checkGCMIV). Every AES-GCM call
// goes through it. The caller frees the returned params after the call.
func gcmMechanism(iv, aad []byte) ([]*cryptoki.Mechanism, *cryptoki.GCMParams, error) {
	if err := checkGCMIV(iv); err != nil {
		return nil, nil, err
	}
	p := cryptoki.NewGCMParams(iv, aad, gcmTagBits)
	return []*cryptoki.Mechanism{cryptoki.NewMechanism(cryptoki.CKM_AES_GCM, p)}, p, nil
}

// gcmEncrypt encrypts pt under key with the caller's IV. It returns the
// ciphertext with the tag appended, and the IV the token used: some HSMs
// ignore the caller's IV and write back their own, which is then the one
// to record (it is checked to be 12 bytes as well).
func gcmEncrypt(c *cryptoki.Ctx, sh cryptoki.SessionHandle, key cryptoki.ObjectHandle, iv, aad, pt []byte) (ct, usedIV []byte, err error) {
	mech, params, err := gcmMechanism(iv, aad)
	if err != nil {
		return nil, nil, err
	}
	defer params.Free()
	if err := c.EncryptInit(sh, mech, key); err != nil {
		return nil, nil, fmt.Errorf("C_EncryptInit(CKM_AES_GCM): %w", err)
	}
	ct, err = c.Encrypt(sh, pt)
	if err != nil {
		return nil, nil, fmt.Errorf("C_Encrypt(CKM_AES_GCM): %w", err)
	}
	usedIV = params.IV()
	if err := checkGCMIV(usedIV); err != nil {
		return nil, nil, fmt.Errorf("token reported the IV it used: %w", err)
	}
	if !bytes.Equal(usedIV, iv) {
		usedIV = bytes.Clone(usedIV)
	}
	if len(ct) != len(pt)+gcmTagSize {
		return nil, nil, fmt.Errorf("C_Encrypt(CKM_AES_GCM) returned %d bytes for %d bytes of plaintext, want plaintext + %d-byte tag", len(ct), len(pt), gcmTagSize)
	}
	return ct, usedIV, nil
}

// gcmDecrypt authenticates and decrypts ct (tag appended). A blob that
// does not authenticate yields an error wrapping seal.ErrDecrypt.
func gcmDecrypt(c *cryptoki.Ctx, sh cryptoki.SessionHandle, key cryptoki.ObjectHandle, iv, aad, ct []byte) ([]byte, error) {
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
		return nil, decryptError("CKM_AES_GCM", err)
	}
	if len(pt) != len(ct)-gcmTagSize {
		return nil, fmt.Errorf("C_Decrypt(CKM_AES_GCM) returned %d bytes for %d bytes of ciphertext", len(pt), len(ct))
	}
	return pt, nil
}

// oaepMechanism is CKM_RSA_PKCS_OAEP with the hash and MGF1 hash of m
// (SHA-256 or SHA-1, the same for both) and no label (CKZ_DATA_SPECIFIED
// with empty source data, the only form SoftHSM accepts).
func oaepMechanism(m mechanism) []*cryptoki.Mechanism {
	hash, mgf := uint(cryptoki.CKM_SHA256), uint(cryptoki.CKG_MGF1_SHA256)
	if m == mechRSAOAEPSHA1 {
		hash, mgf = cryptoki.CKM_SHA_1, cryptoki.CKG_MGF1_SHA1
	}
	p := cryptoki.NewOAEPParams(hash, mgf, cryptoki.CKZ_DATA_SPECIFIED, nil)
	return []*cryptoki.Mechanism{cryptoki.NewMechanism(cryptoki.CKM_RSA_PKCS_OAEP, p)}
}

func oaepEncrypt(c *cryptoki.Ctx, sh cryptoki.SessionHandle, m mechanism, pub cryptoki.ObjectHandle, pt []byte) ([]byte, error) {
	if err := c.EncryptInit(sh, oaepMechanism(m), pub); err != nil {
		return nil, fmt.Errorf("C_EncryptInit(%s): %w", m, err)
	}
	ct, err := c.Encrypt(sh, pt)
	if err != nil {
		return nil, fmt.Errorf("C_Encrypt(%s): %w", m, err)
	}
	return ct, nil
}

func oaepDecrypt(c *cryptoki.Ctx, sh cryptoki.SessionHandle, m mechanism, priv cryptoki.ObjectHandle, ct []byte) ([]byte, error) {
	if err := c.DecryptInit(sh, oaepMechanism(m), priv); err != nil {
		return nil, fmt.Errorf("C_DecryptInit(%s): %w", m, err)
	}
	pt, err := c.Decrypt(sh, ct)
	if err != nil {
		return nil, decryptError(m.String(), err)
	}
	return pt, nil
}

// decryptFailed is the error of a C_Decrypt that rejected its input.
type decryptFailed struct {
	mech string
	err  error
}

func (e *decryptFailed) Error() string { return "C_Decrypt(" + e.mech + "): " + e.err.Error() }
func (e *decryptFailed) Unwrap() error { return e.err }

// decryptError classifies a C_Decrypt failure. The return values the
// standard defines for a bad ciphertext wrap seal.ErrDecrypt. Others —
// SoftHSM reports a failed GCM tag check and bad OAEP padding as
// CKR_GENERAL_ERROR — are left for Unwrap to tell apart from a token
// fault (see Seal.classifyDecrypt).
func decryptError(mech string, err error) error {
	if ipk.IsCode(err, cryptoki.CKR_ENCRYPTED_DATA_INVALID) || ipk.IsCode(err, cryptoki.CKR_ENCRYPTED_DATA_LEN_RANGE) {
		return fmt.Errorf("%w: C_Decrypt(%s): %w", seal.ErrDecrypt, mech, err)
	}
	return &decryptFailed{mech: mech, err: err}
}
