package pkcs11

import (
	"errors"
	"fmt"

	cryptoki "github.com/miekg/pkcs11"

	ipk "github.com/keyraft/keyraft/internal/pkcs11"
	"github.com/keyraft/keyraft/seal"
)

// gcmDecrypt is ipk.GCMDecrypt with the seal's reading of a failed
// C_Decrypt (see decryptError).
func gcmDecrypt(c *cryptoki.Ctx, sh cryptoki.SessionHandle, key cryptoki.ObjectHandle, iv, aad, ct []byte) ([]byte, error) {
	pt, err := ipk.GCMDecrypt(c, sh, key, iv, aad, ct)
	return pt, decryptError(err)
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
		return nil, decryptError(&ipk.DecryptError{Mech: m.String(), Err: err})
	}
	return pt, nil
}

// decryptError classifies a C_Decrypt failure (an *ipk.DecryptError).
// The return values the standard defines for a bad ciphertext wrap
// seal.ErrDecrypt. Others — SoftHSM reports a failed GCM tag check and
// bad OAEP padding as CKR_GENERAL_ERROR — are left for Unwrap to tell
// apart from a token fault (see Seal.classifyDecrypt).
func decryptError(err error) error {
	var de *ipk.DecryptError
	if errors.As(err, &de) && (ipk.IsCode(err, cryptoki.CKR_ENCRYPTED_DATA_INVALID) || ipk.IsCode(err, cryptoki.CKR_ENCRYPTED_DATA_LEN_RANGE)) {
		return fmt.Errorf("%w: %w", seal.ErrDecrypt, err)
	}
	return err
}
