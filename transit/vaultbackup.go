package transit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/keyraft/keyraft/keys"
)

// Restoring a HashiCorp Vault transit backup (GET transit/backup/:name on
// Vault), so keys move from Vault to keyraft and their ciphertexts and
// signatures keep working. A Vault backup is base64 of a JSON object
// {"policy": {...}, "archived_keys": {"keys": [...]}}: the policy holds
// the key's settings and its recent versions by number, the archive every
// version by position (version minus min_available_version). Material is
// in Vault's own shapes: raw bytes for symmetric keys and as ed25519's
// 64-byte private key, big integers for ECDSA and RSA keys.

// errNotVaultBackup: the JSON is not shaped like a Vault backup at all.
var errNotVaultBackup = errors.New("not a Vault transit backup")

// vaultKeyData is Vault's backup document. The same types write one
// (vaultexport.go): fields keyraft only reads are omitted when empty.
type vaultKeyData struct {
	Policy       *vaultPolicy   `json:"policy"`
	ArchivedKeys *vaultArchived `json:"archived_keys"`
}

// vaultArchived is the archive: version n at index n minus
// min_available_version.
type vaultArchived struct {
	Keys []vaultKeyEntry `json:"keys"`
}

// vaultPolicy is the part of Vault's key policy keyraft uses. Imported
// and AllowImportedKeyRotation have no JSON tags in Vault.
type vaultPolicy struct {
	Name                 string                   `json:"name"`
	Keys                 map[string]vaultKeyEntry `json:"keys"`
	Type                 *int                     `json:"type"`
	Derived              bool                     `json:"derived"`
	KDF                  int                      `json:"kdf"`
	ConvergentEncryption bool                     `json:"convergent_encryption"`
	ConvergentVersion    int                      `json:"convergent_version"`
	Exportable           bool                     `json:"exportable"`
	MinDecryptionVersion int                      `json:"min_decryption_version"`
	MinEncryptionVersion int                      `json:"min_encryption_version"`
	LatestVersion        int                      `json:"latest_version"`
	ArchiveVersion       int                      `json:"archive_version"`
	ArchiveMinVersion    int                      `json:"archive_min_version"`
	MinAvailableVersion  int                      `json:"min_available_version"`
	DeletionAllowed      bool                     `json:"deletion_allowed"`
	BackupInfo           *vaultBackupInfo         `json:"backup_info,omitempty"`
	AllowPlaintextBackup bool                     `json:"allow_plaintext_backup"`
	AutoRotatePeriod     time.Duration            `json:"auto_rotate_period"`
	KeySize              int                      `json:"key_size,omitempty"`
	VersionTemplate      string                   `json:"version_template"`
	ManagedKeyName       string                   `json:"managed_key_name,omitempty"`
	Imported             bool                     `json:"Imported"`
	AllowRotation        bool                     `json:"AllowImportedKeyRotation"`
	LegacyKey            []byte                   `json:"key,omitempty"`
}

// vaultBackupInfo is when a backup was made, of which latest version.
type vaultBackupInfo struct {
	Time    time.Time `json:"time"`
	Version int       `json:"version"`
}

// vaultKeyEntry is one version in Vault's form.
type vaultKeyEntry struct {
	Key               []byte       `json:"key"`
	HMACKey           []byte       `json:"hmac_key"`
	CreationTime      time.Time    `json:"time"`
	ECX               *big.Int     `json:"ec_x"`
	ECY               *big.Int     `json:"ec_y"`
	ECD               *big.Int     `json:"ec_d"`
	RSAKey            *vaultRSAKey `json:"rsa_key"`
	PublicKey         string       `json:"public_key"`
	ConvergentVersion int          `json:"convergent_version"`
	PublicKeyImported bool         `json:"public_key_imported"`
	DeprecatedTime    int64        `json:"creation_time"`
}

// vaultRSAKey is Go's rsa.PrivateKey as encoding/json writes it.
type vaultRSAKey struct {
	N           *big.Int            `json:"N"`
	E           int                 `json:"E"`
	D           *big.Int            `json:"D"`
	Primes      []*big.Int          `json:"Primes"`
	Precomputed *vaultRSAPrecompute `json:"Precomputed,omitempty"`
}

// vaultRSAPrecompute is Go's rsa.PrecomputedValues as encoding/json
// writes it (CRTValues is empty for two primes); keyraft only writes it.
type vaultRSAPrecompute struct {
	Dp        *big.Int   `json:"Dp"`
	Dq        *big.Int   `json:"Dq"`
	Qinv      *big.Int   `json:"Qinv"`
	CRTValues []struct{} `json:"CRTValues"`
}

// vaultKeyTypes maps the KeyType enum of Vault's keysutil to keyraft's
// types where HashiCorp Vault and OpenBao agree (0 to 9). From 10 on
// they differ: HashiCorp Vault has managed keys at 10 and hmac at 11;
// OpenBao has hmac at 10, xchacha20-poly1305 at 11 and external keys at
// 10000 (see vaultKeyType).
var vaultKeyTypes = map[int]keys.Type{
	0: keys.AES256GCM96, 1: keys.ECDSAP256, 2: keys.Ed25519, 3: keys.RSA2048,
	4: keys.RSA4096, 5: keys.ChaCha20Poly1305, 6: keys.ECDSAP384, 7: keys.ECDSAP521,
	8: keys.AES128GCM96, 9: keys.RSA3072,
}

// The type numbers whose meaning depends on whose backup it is.
const (
	vaultTypeManagedOrBaoHMAC   = 10 // HashiCorp Vault: managed key; OpenBao: hmac
	vaultTypeHMACOrBaoXChaCha20 = 11 // HashiCorp Vault: hmac; OpenBao: xchacha20-poly1305
	vaultTypeBaoExternal        = 10000
)

// vaultKeyType is the keyraft type of a backup's policy, telling
// HashiCorp Vault's numbering from OpenBao's by key_size, which both set
// on every hmac key (generated or imported) and neither on other types.
func vaultKeyType(vp *vaultPolicy) (keys.Type, error) {
	n := *vp.Type
	if t, ok := vaultKeyTypes[n]; ok {
		return t, nil
	}
	switch {
	case n == vaultTypeManagedOrBaoHMAC && vp.KeySize > 0 && vp.ManagedKeyName == "":
		return keys.HMAC, nil // OpenBao
	case n == vaultTypeManagedOrBaoHMAC:
		return "", errors.New("Vault managed keys (type 10 without key_size) cannot be restored: their material is not in the backup")
	case n == vaultTypeHMACOrBaoXChaCha20 && vp.KeySize > 0:
		return keys.HMAC, nil // HashiCorp Vault
	case n == vaultTypeHMACOrBaoXChaCha20:
		return keys.XChaCha20Poly1305, nil // OpenBao
	case n == vaultTypeBaoExternal:
		return "", errors.New("OpenBao external keys cannot be restored: their material is not in the backup")
	}
	return "", fmt.Errorf("Vault key type %d is not supported", n)
}

// vaultHMACKeySize is the size of the HMAC key Vault makes for every
// version (and keyraft too).
const vaultHMACKeySize = 32

// vaultKDFHKDF is Vault's kdf value for HKDF-SHA256, the derivation
// keyraft implements (0 is Vault's legacy HMAC-SHA256 counter mode).
const vaultKDFHKDF = 1

// maxVaultBigIntDigits bounds a big integer of a Vault backup before it
// is parsed (an RSA-4096 modulus has 1234 decimal digits).
const maxVaultBigIntDigits = 1300

// decodeVaultBackup turns the JSON of a Vault backup into a keyraft key,
// checked with Policy.validate and every version usable. It returns
// errNotVaultBackup when raw does not look like one, or an error whose
// text says what is unsupported or wrong (never any material).
func decodeVaultBackup(raw []byte, now time.Time) (*Policy, error) {
	var probe struct {
		Policy map[string]json.RawMessage `json:"policy"`
	}
	if json.Unmarshal(raw, &probe) != nil || probe.Policy == nil || probe.Policy["keys"] == nil || probe.Policy["type"] == nil {
		return nil, errNotVaultBackup
	}
	if err := checkBigInts(raw); err != nil {
		return nil, err
	}
	var kd vaultKeyData
	if err := json.Unmarshal(raw, &kd); err != nil {
		return nil, fmt.Errorf("does not decode: %s", decodeErrText(err))
	}
	vp := kd.Policy
	if vp == nil || vp.Type == nil {
		return nil, errNotVaultBackup
	}
	defer func() {
		for _, e := range vp.Keys {
			e.zero()
		}
		if kd.ArchivedKeys != nil {
			for _, e := range kd.ArchivedKeys.Keys {
				e.zero()
			}
		}
		clear(vp.LegacyKey)
	}()
	t, err := vaultKeyType(vp)
	switch {
	case err != nil:
		return nil, err
	case vp.ManagedKeyName != "":
		return nil, errors.New("Vault managed keys cannot be restored: their material is not in the backup")
	case vp.ConvergentEncryption:
		return nil, errors.New("convergent encryption keys cannot be restored from Vault: keyraft computes convergent nonces differently, so equal plaintexts would no longer give equal ciphertexts")
	case vp.Derived && vp.KDF != vaultKDFHKDF:
		return nil, errors.New("derived keys with Vault's legacy kdf (hmac_sha256_counter) cannot be restored: keyraft derives with HKDF-SHA256 only")
	case vp.Derived && t == keys.Ed25519:
		return nil, errors.New("derived ed25519 keys cannot be restored from Vault: keyraft derives them from the 32-byte seed, Vault from the 64-byte private key")
	case vp.VersionTemplate != "" && vp.VersionTemplate != "vault:v{{version}}:":
		return nil, fmt.Errorf("custom version_template %q is not supported: keyraft ciphertexts start with vault:v<N>:", Truncate(vp.VersionTemplate))
	case len(vp.LegacyKey) > 0 && len(vp.Keys) == 0:
		return nil, errors.New("backups of Vault's pre-0.6 single-key format are not supported: read and back up the key with a current Vault first")
	case vp.LatestVersion < 1 || vp.LatestVersion > maxVersions:
		return nil, fmt.Errorf("latest_version %d out of range", vp.LatestVersion)
	case vp.MinAvailableVersion < 0 || vp.MinAvailableVersion > vp.LatestVersion:
		return nil, fmt.Errorf("min_available_version %d out of range", vp.MinAvailableVersion)
	case vp.LatestVersion-max(vp.MinAvailableVersion, 1)+1 > maxBackupVersions:
		return nil, fmt.Errorf("%d versions, more than the %d a restored key may have (trim the key in Vault first)", vp.LatestVersion-max(vp.MinAvailableVersion, 1)+1, maxBackupVersions)
	}
	p := &Policy{
		Name: vp.Name, Type: t, Derived: vp.Derived, Exportable: vp.Exportable,
		AllowPlaintextBackup: vp.AllowPlaintextBackup, DeletionAllowed: vp.DeletionAllowed,
		MinDecryptionVersion: max(vp.MinDecryptionVersion, 1), MinEncryptionVersion: vp.MinEncryptionVersion,
		MinAvailableVersion: vp.MinAvailableVersion, LatestVersion: vp.LatestVersion,
		AutoRotatePeriod: vp.AutoRotatePeriod, Imported: vp.Imported, AllowRotation: vp.AllowRotation,
		Versions: map[int]*keys.Version{},
	}
	if t == keys.HMAC {
		p.KeySize = vp.KeySize
	}
	ok := false
	defer func() {
		if !ok {
			p.zero()
		}
	}()
	for n := max(vp.MinAvailableVersion, 1); n <= vp.LatestVersion; n++ {
		e, found := vp.Keys[strconv.Itoa(n)]
		if !found && kd.ArchivedKeys != nil {
			if i := n - vp.MinAvailableVersion; i >= 0 && i < len(kd.ArchivedKeys.Keys) {
				e, found = kd.ArchivedKeys.Keys[i], true
			}
		}
		if !found {
			return nil, fmt.Errorf("version %d is neither in the policy nor in the archive", n)
		}
		v, err := e.version(t, n, now)
		if err != nil {
			return nil, fmt.Errorf("version %d: %v", n, err)
		}
		p.Versions[n] = v
		if t == keys.HMAC {
			p.KeySize = len(v.Secret)
		}
	}
	ok = true
	return p, nil
}

// checkBigInts refuses numbers too long for any key before
// encoding/json hands them to big.Int (whose parsing is superlinear).
func checkBigInts(raw []byte) error {
	run := 0
	for _, c := range raw {
		if c >= '0' && c <= '9' {
			run++
			if run > maxVaultBigIntDigits {
				return errors.New("a number in the backup is longer than any key")
			}
			continue
		}
		run = 0
	}
	return nil
}

// version converts one Vault key entry of type t to keyraft's form.
func (e vaultKeyEntry) version(t keys.Type, n int, now time.Time) (*keys.Version, error) {
	if e.PublicKeyImported {
		return nil, errors.New("only a public key was imported into this version in Vault; keyraft keys need the private key")
	}
	ct := e.CreationTime
	if ct.IsZero() && e.DeprecatedTime > 0 {
		ct = time.Unix(e.DeprecatedTime, 0)
	}
	if ct.IsZero() {
		ct = now
	}
	if len(e.HMACKey) != 0 && len(e.HMACKey) != vaultHMACKeySize {
		return nil, fmt.Errorf("hmac_key must be %d bytes, got %d", vaultHMACKeySize, len(e.HMACKey))
	}
	v := &keys.Version{Version: n, CreationTime: ct.UTC(), HMACKey: bytes.Clone(e.HMACKey)}
	var err error
	switch {
	case importedSizes[t] != 0, t == keys.HMAC:
		if len(e.Key) == 0 {
			err = errors.New("no key material")
			break
		}
		v.Secret = bytes.Clone(e.Key)
	case t == keys.Ed25519:
		if len(e.Key) != ed25519.PrivateKeySize {
			err = errors.New("an ed25519 key must be Vault's 64-byte private key")
			break
		}
		seed := e.Key[:ed25519.SeedSize]
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		if subtle.ConstantTimeCompare(pub, e.Key[ed25519.SeedSize:]) != 1 {
			err = errors.New("the ed25519 public half does not match the private key")
			break
		}
		v.Secret = bytes.Clone(seed)
	case ecdsaCurveName(t) != "":
		v.Secret, err = e.ecdsaPKCS8(t)
	case rsaTypeBits(t) != 0:
		v.Secret, err = e.rsaPKCS8(t)
	default:
		err = fmt.Errorf("unsupported key type %s", t)
	}
	if err != nil {
		v.Zero()
		return nil, err
	}
	if len(v.HMACKey) == 0 && t != keys.HMAC {
		v.HMACKey = nil // Vault may lack it on old versions: hmac with them is refused
	}
	if _, herr := keys.NewHandle(keys.Spec{Type: t}, v); herr != nil {
		v.Zero()
		return nil, errors.New("the key material is not a valid " + string(t) + " key")
	}
	return v, nil
}

func curveFor(t keys.Type) elliptic.Curve {
	switch t {
	case keys.ECDSAP256:
		return elliptic.P256()
	case keys.ECDSAP384:
		return elliptic.P384()
	case keys.ECDSAP521:
		return elliptic.P521()
	}
	return nil
}

// ecdsaPKCS8 rebuilds an ECDSA key from Vault's ec_d (and checks ec_x,
// ec_y against it).
func (e vaultKeyEntry) ecdsaPKCS8(t keys.Type) ([]byte, error) {
	c := curveFor(t)
	size := (c.Params().BitSize + 7) / 8
	if e.ECD == nil || e.ECD.Sign() <= 0 || e.ECD.BitLen() > c.Params().BitSize {
		return nil, errors.New("missing or invalid ec_d")
	}
	d := e.ECD.FillBytes(make([]byte, size))
	defer clear(d)
	k, err := ecdsa.ParseRawPrivateKey(c, d)
	if err != nil {
		return nil, errors.New("ec_d is not a valid private key on " + c.Params().Name)
	}
	pub, err := k.PublicKey.Bytes() // uncompressed: 0x04 ‖ X ‖ Y
	if err != nil {
		return nil, errors.New("the ECDSA public key does not encode")
	}
	if e.ECX != nil && e.ECY != nil {
		x, y := new(big.Int).SetBytes(pub[1:1+size]), new(big.Int).SetBytes(pub[1+size:])
		if x.Cmp(e.ECX) != 0 || y.Cmp(e.ECY) != 0 {
			return nil, errors.New("ec_x and ec_y do not match ec_d")
		}
	}
	return x509.MarshalPKCS8PrivateKey(k)
}

// rsaPKCS8 rebuilds an RSA key from Vault's rsa_key (Go's JSON form of
// rsa.PrivateKey), validated.
func (e vaultKeyEntry) rsaPKCS8(t keys.Type) ([]byte, error) {
	r := e.RSAKey
	bits := rsaTypeBits(t)
	if r == nil || r.N == nil || r.D == nil || len(r.Primes) != 2 || r.Primes[0] == nil || r.Primes[1] == nil {
		return nil, errors.New("rsa_key must have N, E, D and two primes")
	}
	if r.N.BitLen() != bits {
		return nil, fmt.Errorf("rsa_key has a %d-bit modulus, type %s needs %d", r.N.BitLen(), t, bits)
	}
	if r.D.Sign() <= 0 || r.D.BitLen() > bits || r.Primes[0].Sign() <= 0 || r.Primes[1].Sign() <= 0 ||
		r.Primes[0].BitLen() > bits || r.Primes[1].BitLen() > bits {
		return nil, errors.New("rsa_key has out-of-range values")
	}
	k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: r.N, E: r.E}, D: r.D, Primes: r.Primes}
	defer zeroRSA(k)
	if err := k.Validate(); err != nil {
		return nil, errors.New("rsa_key is not a consistent RSA key")
	}
	k.Precompute()
	return x509.MarshalPKCS8PrivateKey(k)
}

// zero overwrites the entry's material.
func (e vaultKeyEntry) zero() {
	clear(e.Key)
	clear(e.HMACKey)
	if e.ECD != nil {
		clear(e.ECD.Bits())
	}
	if r := e.RSAKey; r != nil {
		secret := append([]*big.Int{r.D}, r.Primes...)
		if pc := r.Precomputed; pc != nil {
			secret = append(secret, pc.Dp, pc.Dq, pc.Qinv)
		}
		for _, n := range secret {
			if n != nil {
				clear(n.Bits())
			}
		}
	}
}
