package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// KeyOptions are the settings of a new key (transit/keys/:name). They
// cannot be changed later, except through ConfigureKey where noted there.
type KeyOptions struct {
	Type                 string // "aes256-gcm96" when empty (the server's default)
	Derived              bool   // every use needs a context
	ConvergentEncryption bool   // same plaintext and context, same ciphertext; needs Derived
	Exportable           bool
	AllowPlaintextBackup bool
	AutoRotatePeriod     time.Duration // whole seconds; 0 = no automatic rotation
	KeySize              int           // for hmac keys; 0 = the server's default
	// Backend names the crypto backend that holds the key ("soft",
	// "pkcs11", a registered plugin, "builtin"); "" = the server's default.
	Backend string
}

// KeyConfig changes a key's settings (transit/keys/:name/config). Only the
// fields that are not nil are sent.
type KeyConfig struct {
	MinDecryptionVersion *int
	MinEncryptionVersion *int
	DeletionAllowed      *bool
	Exportable           *bool // cannot be turned off once on
	AllowPlaintextBackup *bool // cannot be turned off once on
	AutoRotatePeriod     *time.Duration
}

// Key is what transit/keys/:name says about a key.
type Key struct {
	Name                 string `json:"name"`
	Type                 string `json:"type"`
	LatestVersion        int    `json:"latest_version"`
	MinAvailableVersion  int    `json:"min_available_version"`
	MinDecryptionVersion int    `json:"min_decryption_version"`
	MinEncryptionVersion int    `json:"min_encryption_version"`
	DeletionAllowed      bool   `json:"deletion_allowed"`
	Exportable           bool   `json:"exportable"`
	AllowPlaintextBackup bool   `json:"allow_plaintext_backup"`
	Derived              bool   `json:"derived"`
	ConvergentEncryption bool   `json:"convergent_encryption"`
	KDF                  string `json:"kdf,omitempty"`
	// AutoRotatePeriod is in seconds, as the server sends it.
	AutoRotatePeriod   int64 `json:"auto_rotate_period"`
	SupportsEncryption bool  `json:"supports_encryption"`
	SupportsDecryption bool  `json:"supports_decryption"`
	SupportsDerivation bool  `json:"supports_derivation"`
	SupportsSigning    bool  `json:"supports_signing"`
	ImportedKey        bool  `json:"imported_key"`
	// Keys maps each live version ("1", "2", …) to what the server says
	// about it: its creation time for symmetric keys, an object with the
	// public key for asymmetric ones. Kept as the server wrote it.
	Keys map[string]json.RawMessage `json:"keys"`
}

// EncryptRequest is the input of Encrypt. Plaintext may be empty.
type EncryptRequest struct {
	Plaintext      []byte
	Context        []byte // required for derived keys
	AssociatedData []byte // authenticated, not encrypted (AEAD key types)
	KeyVersion     int    // 0 = the latest
}

// EncryptResponse is the answer of Encrypt.
type EncryptResponse struct {
	Ciphertext string `json:"ciphertext"` // "vault:v1:…"
	KeyVersion int    `json:"key_version"`
}

// DecryptRequest is the input of Decrypt.
type DecryptRequest struct {
	Ciphertext     string
	Context        []byte
	AssociatedData []byte
}

// SignRequest is the input of Sign. The algorithm fields are sent only
// when set; the server's defaults apply otherwise.
type SignRequest struct {
	Input               []byte // the data, or its digest when Prehashed
	Prehashed           bool
	HashAlgorithm       string // sha2-256, sha2-512, …
	SignatureAlgorithm  string // pss or pkcs1v15 (RSA)
	MarshalingAlgorithm string // asn1 or jws (ECDSA)
	Context             []byte // for derived ed25519 keys
	KeyVersion          int    // 0 = the latest
}

// SignResponse is the answer of Sign.
type SignResponse struct {
	Signature  string `json:"signature"` // "vault:v1:…"
	KeyVersion int    `json:"key_version"`
}

// VerifyRequest is the input of Verify; see SignRequest for the fields.
type VerifyRequest struct {
	Input               []byte
	Signature           string
	Prehashed           bool
	HashAlgorithm       string
	SignatureAlgorithm  string
	MarshalingAlgorithm string
	Context             []byte
}

// errNoName is returned by the key helpers for an empty key name.
var errNoName = errors.New("a key name is required")

// keyPath returns prefix + the escaped name, so that no name (one with a
// slash, a question mark, or a dot segment) can reach another endpoint.
func keyPath(prefix, name string) (string, error) {
	switch name {
	case "":
		return "", errNoName
	case ".", "..":
		return "", fmt.Errorf("invalid key name %q", name)
	}
	return prefix + url.PathEscape(name), nil
}

// seconds encodes a duration the way the transit API reads one.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// CreateKey creates the key name.
func (c *Client) CreateKey(ctx context.Context, name string, o KeyOptions) error {
	path, err := keyPath("transit/keys/", name)
	if err != nil {
		return err
	}
	body := map[string]any{}
	if o.Type != "" {
		body["type"] = o.Type
	}
	if o.Derived {
		body["derived"] = true
	}
	if o.ConvergentEncryption {
		body["convergent_encryption"] = true
	}
	if o.Exportable {
		body["exportable"] = true
	}
	if o.AllowPlaintextBackup {
		body["allow_plaintext_backup"] = true
	}
	if o.AutoRotatePeriod != 0 {
		body["auto_rotate_period"] = seconds(o.AutoRotatePeriod)
	}
	if o.Backend != "" {
		body["backend"] = o.Backend
	}
	if o.KeySize != 0 {
		body["key_size"] = o.KeySize
	}
	return c.Do(ctx, "POST", path, body, nil)
}

// ReadKey returns the settings and versions of the key name.
func (c *Client) ReadKey(ctx context.Context, name string) (*Key, error) {
	path, err := keyPath("transit/keys/", name)
	if err != nil {
		return nil, err
	}
	k := new(Key)
	if err := c.data(ctx, "GET", path, nil, k); err != nil {
		return nil, err
	}
	return k, nil
}

// ListKeys returns the names of the keys. A server with no keys answers
// 404 with no message, as Vault does; that, and an answer without data,
// is an empty list here.
func (c *Client) ListKeys(ctx context.Context) ([]string, error) {
	var env struct {
		Data *struct {
			Keys []string `json:"keys"`
		} `json:"data"`
	}
	err := c.Do(ctx, "LIST", "transit/keys", nil, &env)
	var re *ResponseError
	if errors.As(err, &re) && re.StatusCode == 404 && len(re.Errors) == 0 {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	if env.Data == nil || env.Data.Keys == nil {
		return []string{}, nil
	}
	return env.Data.Keys, nil
}

// RotateKey adds a new version to the key name; it becomes the one used
// to encrypt and sign.
func (c *Client) RotateKey(ctx context.Context, name string) error {
	path, err := keyPath("transit/keys/", name)
	if err != nil {
		return err
	}
	return c.Do(ctx, "POST", path+"/rotate", nil, nil)
}

// ConfigureKey changes the settings of the key name that cfg sets.
func (c *Client) ConfigureKey(ctx context.Context, name string, cfg KeyConfig) error {
	path, err := keyPath("transit/keys/", name)
	if err != nil {
		return err
	}
	body := map[string]any{}
	if cfg.MinDecryptionVersion != nil {
		body["min_decryption_version"] = *cfg.MinDecryptionVersion
	}
	if cfg.MinEncryptionVersion != nil {
		body["min_encryption_version"] = *cfg.MinEncryptionVersion
	}
	if cfg.DeletionAllowed != nil {
		body["deletion_allowed"] = *cfg.DeletionAllowed
	}
	if cfg.Exportable != nil {
		body["exportable"] = *cfg.Exportable
	}
	if cfg.AllowPlaintextBackup != nil {
		body["allow_plaintext_backup"] = *cfg.AllowPlaintextBackup
	}
	if cfg.AutoRotatePeriod != nil {
		body["auto_rotate_period"] = seconds(*cfg.AutoRotatePeriod)
	}
	return c.Do(ctx, "POST", path+"/config", body, nil)
}

// DeleteKey deletes the key name and every version of it. The server
// refuses unless the key's deletion_allowed is set.
func (c *Client) DeleteKey(ctx context.Context, name string) error {
	path, err := keyPath("transit/keys/", name)
	if err != nil {
		return err
	}
	return c.Do(ctx, "DELETE", path, nil, nil)
}

// BackupKey returns the plaintext backup of the key name, base64 text
// that RestoreKey takes. The key must be exportable and allow plaintext
// backup. format "" is keyraft's own backup; "vault" and "openbao" give
// the backup that HashiCorp Vault's or OpenBao's transit/restore takes.
// The backup is the key's material: keep it as such.
func (c *Client) BackupKey(ctx context.Context, name, format string) (string, error) {
	path, err := keyPath("transit/backup/", name)
	if err != nil {
		return "", err
	}
	if format != "" {
		path += "?format=" + url.QueryEscape(format)
	}
	var out struct {
		Backup string `json:"backup"`
	}
	if err := c.data(ctx, "GET", path, nil, &out); err != nil {
		return "", err
	}
	return out.Backup, nil
}

// RestoreKey restores backup (keyraft's, or one from Vault or OpenBao)
// as the key name, or under the name inside the backup when name is "".
// force replaces an existing key, which must then allow deletion.
func (c *Client) RestoreKey(ctx context.Context, name, backup string, force bool) error {
	path := "transit/restore"
	if name != "" {
		p, err := keyPath("transit/restore/", name)
		if err != nil {
			return err
		}
		path = p
	}
	body := map[string]any{"backup": backup}
	if force {
		body["force"] = true
	}
	return c.Do(ctx, "POST", path, body, nil)
}

// Encrypt encrypts req.Plaintext with the key name.
func (c *Client) Encrypt(ctx context.Context, name string, req EncryptRequest) (*EncryptResponse, error) {
	path, err := keyPath("transit/encrypt/", name)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"plaintext": b64(req.Plaintext)} // sent even when empty
	if len(req.Context) > 0 {
		body["context"] = b64(req.Context)
	}
	if len(req.AssociatedData) > 0 {
		body["associated_data"] = b64(req.AssociatedData)
	}
	if req.KeyVersion != 0 {
		body["key_version"] = req.KeyVersion
	}
	r := new(EncryptResponse)
	if err := c.data(ctx, "POST", path, body, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Decrypt decrypts req.Ciphertext with the key name and returns the
// plaintext.
func (c *Client) Decrypt(ctx context.Context, name string, req DecryptRequest) ([]byte, error) {
	path, err := keyPath("transit/decrypt/", name)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"ciphertext": req.Ciphertext}
	if len(req.Context) > 0 {
		body["context"] = b64(req.Context)
	}
	if len(req.AssociatedData) > 0 {
		body["associated_data"] = b64(req.AssociatedData)
	}
	var d struct {
		Plaintext string `json:"plaintext"`
	}
	if err := c.data(ctx, "POST", path, body, &d); err != nil {
		return nil, err
	}
	pt, err := base64.StdEncoding.DecodeString(d.Plaintext)
	if err != nil {
		return nil, fmt.Errorf("POST %s: the plaintext in the response is not base64", path)
	}
	return pt, nil
}

// Sign signs req.Input with the key name.
func (c *Client) Sign(ctx context.Context, name string, req SignRequest) (*SignResponse, error) {
	path, err := keyPath("transit/sign/", name)
	if err != nil {
		return nil, err
	}
	body := sigBody(req.Input, req.Prehashed, req.HashAlgorithm, req.SignatureAlgorithm, req.MarshalingAlgorithm, req.Context)
	if req.KeyVersion != 0 {
		body["key_version"] = req.KeyVersion
	}
	r := new(SignResponse)
	if err := c.data(ctx, "POST", path, body, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Verify reports whether req.Signature is a valid signature of req.Input
// by the key name. A well-formed signature that does not match is false
// with a nil error.
func (c *Client) Verify(ctx context.Context, name string, req VerifyRequest) (bool, error) {
	path, err := keyPath("transit/verify/", name)
	if err != nil {
		return false, err
	}
	body := sigBody(req.Input, req.Prehashed, req.HashAlgorithm, req.SignatureAlgorithm, req.MarshalingAlgorithm, req.Context)
	body["signature"] = req.Signature
	var d struct {
		Valid bool `json:"valid"`
	}
	if err := c.data(ctx, "POST", path, body, &d); err != nil {
		return false, err
	}
	return d.Valid, nil
}

func sigBody(input []byte, prehashed bool, hash, sig, marshaling string, context []byte) map[string]any {
	body := map[string]any{"input": b64(input)}
	if prehashed {
		body["prehashed"] = true
	}
	if hash != "" {
		body["hash_algorithm"] = hash
	}
	if sig != "" {
		body["signature_algorithm"] = sig
	}
	if marshaling != "" {
		body["marshaling_algorithm"] = marshaling
	}
	if len(context) > 0 {
		body["context"] = b64(context)
	}
	return body
}
