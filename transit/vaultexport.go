package transit

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/keyraft/keyraft/keys"
)

// Writing a key as a Vault transit backup, so that it moves from keyraft
// to HashiCorp Vault or OpenBao (POST transit/restore there) with its
// ciphertexts, signatures and HMACs still valid: the reverse of
// vaultbackup.go, in the same types. The two differ only in how they
// number key types from 10 on (see vaultKeyTypes), so the caller says
// which one the backup is for.

// The formats of GET transit/backup/:name?format=.
const (
	BackupFormatKeyraft = "keyraft" // keyraft's own (the default)
	BackupFormatVault   = "vault"   // HashiCorp Vault's transit backup
	BackupFormatOpenBao = "openbao" // OpenBao's transit backup
)

// vaultMinHMACKeySize is the shortest hmac key Vault and OpenBao make or
// import (and rotate).
const vaultMinHMACKeySize = 32

// vaultTypeNumber is t's number in the KeyType enum of format's keysutil.
func vaultTypeNumber(t keys.Type, format string) (int, error) {
	for n, vt := range vaultKeyTypes {
		if vt == t {
			return n, nil
		}
	}
	switch {
	case t == keys.HMAC && format == BackupFormatOpenBao:
		return vaultTypeManagedOrBaoHMAC, nil
	case t == keys.HMAC:
		return vaultTypeHMACOrBaoXChaCha20, nil
	case t == keys.XChaCha20Poly1305 && format == BackupFormatOpenBao:
		return vaultTypeHMACOrBaoXChaCha20, nil
	case t == keys.XChaCha20Poly1305:
		return 0, errors.New("HashiCorp Vault has no xchacha20-poly1305 keys (OpenBao has: use format=openbao)")
	}
	return 0, fmt.Errorf("key type %s has no Vault equivalent", t)
}

// vaultRefusal is why key p (exportable and allowed a plaintext backup),
// which its caller calls name, cannot be written as a Vault backup for
// format, nil when it can: what Vault would restore must behave as the
// key does here.
func vaultRefusal(p *Policy, format, name string, now time.Time) error {
	switch s := p.state(now); {
	case p.Backend != "":
		return fmt.Errorf("it lives on crypto backend %q, whose key material the node cannot read", p.Backend)
	case s == StatePreActive || s == StateDisabled:
		return fmt.Errorf("it is %s, and Vault has no lifecycle states: restored there it would be usable at once (enable it first: keyraft keys enable %s)", s, name)
	case p.Convergent:
		return errors.New("convergent encryption keys cannot be backed up for Vault: Vault computes convergent nonces differently, so equal plaintexts would no longer give equal ciphertexts")
	case p.Derived && p.Type == keys.Ed25519:
		return errors.New("derived ed25519 keys cannot be backed up for Vault: Vault derives them from the 64-byte private key, keyraft from the seed, so the signatures would differ")
	case p.Type == keys.HMAC && p.KeySize < vaultMinHMACKeySize:
		return fmt.Errorf("hmac keys of %d bytes cannot be backed up for Vault: Vault's hmac keys are %d to %d bytes", p.KeySize, vaultMinHMACKeySize, maxVaultHMACKeySize)
	}
	_, err := vaultTypeNumber(p.Type, format)
	return err
}

// maxVaultHMACKeySize is the longest hmac key of Vault (and of keyraft).
const maxVaultHMACKeySize = 512

// encodeVaultBackup is the JSON of a Vault backup of p for format, named
// name: every available version in the archive, those from
// min_decryption_version on also in the policy, as Vault keeps them.
// Errors say what Vault cannot represent, never any material.
func encodeVaultBackup(p *Policy, format, name string, now time.Time) ([]byte, error) {
	if name == "" {
		name = p.Name
	}
	if err := vaultRefusal(p, format, name, now); err != nil {
		return nil, err
	}
	typ, _ := vaultTypeNumber(p.Type, format)
	vp := &vaultPolicy{
		Name: name, Type: &typ, Keys: map[string]vaultKeyEntry{}, Derived: p.Derived,
		Exportable: p.Exportable, AllowPlaintextBackup: p.AllowPlaintextBackup, DeletionAllowed: p.DeletionAllowed,
		MinDecryptionVersion: p.MinDecryptionVersion, MinEncryptionVersion: p.MinEncryptionVersion,
		MinAvailableVersion: p.MinAvailableVersion, ArchiveMinVersion: p.MinAvailableVersion,
		LatestVersion: p.LatestVersion, ArchiveVersion: p.LatestVersion,
		AutoRotatePeriod: p.AutoRotatePeriod, Imported: p.Imported, AllowRotation: p.AllowRotation,
		BackupInfo: &vaultBackupInfo{Time: now.UTC(), Version: p.LatestVersion},
	}
	if p.Derived {
		vp.KDF = vaultKDFHKDF
	}
	if p.Type == keys.HMAC {
		vp.KeySize = p.KeySize
	}
	// archive[0] stays Vault's empty placeholder when nothing was trimmed
	// (min_available_version 0: there is no version 0).
	archive := make([]vaultKeyEntry, p.LatestVersion-p.MinAvailableVersion+1)
	defer func() {
		for _, e := range archive {
			e.zero()
		}
	}()
	for n := max(p.MinAvailableVersion, 1); n <= p.LatestVersion; n++ {
		v := p.Versions[n]
		if v == nil {
			return nil, fmt.Errorf("version %d of key %q has no material", n, p.Name)
		}
		e, err := vaultEntryOf(p.Type, v)
		if err != nil {
			return nil, fmt.Errorf("version %d: %v", n, err)
		}
		archive[n-p.MinAvailableVersion] = e
		if n >= p.MinDecryptionVersion {
			vp.Keys[strconv.Itoa(n)] = e // shares archive's material
		}
	}
	return json.Marshal(vaultKeyData{Policy: vp, ArchivedKeys: &vaultArchived{Keys: archive}})
}

// vaultEntryOf is version v of a key of type t in Vault's form; the
// caller zeroes it.
func vaultEntryOf(t keys.Type, v *keys.Version) (vaultKeyEntry, error) {
	e := vaultKeyEntry{CreationTime: v.CreationTime.UTC(), DeprecatedTime: v.CreationTime.Unix()}
	switch {
	case t == keys.HMAC:
		// Vault's hmac keys MAC with their key, which is also the hmac_key.
		e.HMACKey = append([]byte(nil), v.Secret...)
	case len(v.HMACKey) > 0:
		e.HMACKey = append([]byte(nil), v.HMACKey...)
	}
	bad := errors.New("the key material is not a valid " + string(t) + " key")
	switch {
	case t == keys.HMAC, t.IsAEAD():
		e.Key = append([]byte(nil), v.Secret...)
	case t == keys.Ed25519:
		if len(v.Secret) != ed25519.SeedSize {
			e.zero()
			return vaultKeyEntry{}, bad
		}
		priv := ed25519.NewKeyFromSeed(v.Secret) // seed ‖ public key, as Vault keeps it
		e.Key = priv
		e.PublicKey = base64.StdEncoding.EncodeToString(priv[ed25519.SeedSize:])
	case ecdsaCurveName(t) != "":
		k, err := x509.ParsePKCS8PrivateKey(v.Secret)
		ek, ok := k.(*ecdsa.PrivateKey)
		if err != nil || !ok {
			e.zero()
			return vaultKeyEntry{}, bad
		}
		if err := e.setECDSA(ek); err != nil {
			e.zero()
			return vaultKeyEntry{}, bad
		}
	case rsaTypeBits(t) != 0:
		k, err := x509.ParsePKCS8PrivateKey(v.Secret)
		rk, ok := k.(*rsa.PrivateKey)
		if err != nil || !ok || len(rk.Primes) != 2 {
			zeroRSA(rk)
			e.zero()
			return vaultKeyEntry{}, bad
		}
		rk.Precompute()
		pc := rk.Precomputed
		e.RSAKey = &vaultRSAKey{N: rk.N, E: rk.E, D: rk.D, Primes: rk.Primes,
			Precomputed: &vaultRSAPrecompute{Dp: pc.Dp, Dq: pc.Dq, Qinv: pc.Qinv, CRTValues: []struct{}{}}}
	default:
		e.zero()
		return vaultKeyEntry{}, fmt.Errorf("key type %s has no Vault equivalent", t)
	}
	return e, nil
}

// setECDSA puts k into e as Vault keeps an ECDSA key: the private scalar
// and the public point as integers, and the public key as PEM.
func (e *vaultKeyEntry) setECDSA(k *ecdsa.PrivateKey) error {
	d, err := k.Bytes()
	if err != nil {
		return err
	}
	defer clear(d)
	pub, err := k.PublicKey.Bytes() // uncompressed: 0x04 ‖ X ‖ Y
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return err
	}
	size := (len(pub) - 1) / 2
	e.ECD = new(big.Int).SetBytes(d)
	e.ECX, e.ECY = new(big.Int).SetBytes(pub[1:1+size]), new(big.Int).SetBytes(pub[1+size:])
	e.PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return nil
}

// checkBackupFormat refuses a format GET transit/backup does not know.
func checkBackupFormat(format string) error {
	switch format {
	case "", BackupFormatKeyraft, BackupFormatVault, BackupFormatOpenBao:
		return nil
	}
	return badRequest("invalid format %q: use %s (the default), %s or %s", Truncate(format), BackupFormatKeyraft, BackupFormatVault, BackupFormatOpenBao)
}
