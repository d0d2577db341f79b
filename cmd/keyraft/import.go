package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keyraft/keyraft/api"
	"github.com/keyraft/keyraft/transit"
)

// Bring your own key from the command line. The key file is read and
// wrapped here, under the cluster's wrapping key (RSA-OAEP + AES-KWP,
// Vault's format), so the key itself never travels in the clear, not even
// inside TLS.

const importFileHelp = `
FILE holds the key: raw bytes for aes128-gcm96 (16), aes256-gcm96,
chacha20-poly1305 and xchacha20-poly1305 (32) and hmac (16 to 512); a
PKCS#8 private key (DER, or PEM "PRIVATE KEY") for rsa-*, ecdsa-* and
ed25519. '-' reads standard input.

The command reads the cluster's wrapping key (transit/wrapping_key), wraps
the key locally with a fresh AES-256 key (AES-KWP, RFC 5649) that it wraps
with RSA-OAEP, and sends only that ciphertext. Files made for Vault's
transit import work the same.`

var keysImportCmd = &command{
	name:    "keys import",
	args:    "NAME FILE",
	summary: "import a key made elsewhere (bring your own key)",
	network: true,
	help: `
Create the key NAME from the key material in FILE. An imported key is not
rotated by keyraft unless -allow-rotation is given; add versions with
'keys import-version'. The name must not exist yet.
` + importFileHelp,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		typ := fs.String("type", "aes256-gcm96", "key `type` of the material")
		hash := fs.String("hash", "SHA256", "`hash` for RSA-OAEP: SHA1, SHA224, SHA256, SHA384 or SHA512")
		allowRotation := fs.Bool("allow-rotation", false, "let keyraft rotate the key (new versions made by keyraft)")
		exportable := fs.Bool("exportable", false, "allow the key to be exported")
		backup := fs.Bool("allow-plaintext-backup", false, "allow a plaintext backup of the key")
		derived := fs.Bool("derived", false, "derive a key per context: every use must give -context")
		period := durationFlag{}
		fs.Var(&period, "auto-rotate-period", "rotate every `DURATION` (needs -allow-rotation); 0 = never")
		pos, err := e.positional(cmd, fs, args, 2, 2)
		if err != nil {
			return err
		}
		body := map[string]any{"type": *typ, "hash_function": *hash, "allow_rotation": *allowRotation,
			"exportable": *exportable, "allow_plaintext_backup": *backup, "derived": *derived}
		if period.d != 0 {
			body["auto_rotate_period"] = fmt.Sprintf("%ds", int64(period.d.Seconds()))
		}
		data, err := e.importKey(g, pos[0], pos[1], "import", *hash, body)
		if err != nil {
			return err
		}
		return e.success(g, data, "Imported key %s.", pos[0])
	},
}

var keysImportVersionCmd = &command{
	name:    "keys import-version",
	args:    "NAME FILE",
	summary: "add a version made elsewhere to an imported key",
	network: true,
	help: `
Add the key material in FILE as the next version of the imported key NAME.
New encryptions and signatures use it; older versions stay usable. A
version that holds a key is never replaced.
` + importFileHelp,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		hash := fs.String("hash", "SHA256", "`hash` for RSA-OAEP: SHA1, SHA224, SHA256, SHA384 or SHA512")
		version := fs.Int("version", 0, "the `version` to add: must be the next one (default: the next one)")
		pos, err := e.positional(cmd, fs, args, 2, 2)
		if err != nil {
			return err
		}
		body := map[string]any{"hash_function": *hash}
		if *version != 0 {
			body["version"] = *version
		}
		data, err := e.importKey(g, pos[0], pos[1], "import_version", *hash, body)
		if err != nil {
			return err
		}
		return e.success(g, data, "Imported a new version of key %s.", pos[0])
	},
}

// importKey reads file, wraps it under the server's wrapping key, posts
// it to transit/keys/NAME/<op> and returns the data of the answer.
func (e *env) importKey(g *globals, name, file, op, hash string, body map[string]any) (json.RawMessage, error) {
	if _, err := keyPath(name, op); err != nil || strings.Contains(name, "/") {
		return nil, &hintError{err: fmt.Errorf("invalid key name %q", name), hint: "key names are letters, digits, '_', '-' and '.'"}
	}
	material, err := e.readKeyFile(file)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	c, err := e.client(g)
	if err != nil {
		return nil, err
	}
	pemKey, err := wrappingKey(e.ctx, c)
	if err != nil {
		return nil, err
	}
	ct, err := transit.WrapForImport(pemKey, hash, material)
	if err != nil {
		return nil, &hintError{err: err, hint: "-hash takes SHA1, SHA224, SHA256, SHA384 or SHA512"}
	}
	body["ciphertext"] = ct
	return e.keyAction(c, name, op, body)
}

// wrappingKey fetches the cluster's wrapping key (PEM).
func wrappingKey(ctx context.Context, c *api.Client) (string, error) {
	var out struct {
		Data struct {
			PublicKey string `json:"public_key"`
		} `json:"data"`
	}
	if err := c.Do(ctx, "GET", "transit/wrapping_key", nil, &out); err != nil {
		return "", err
	}
	if out.Data.PublicKey == "" {
		return "", fmt.Errorf("the server sent no wrapping key")
	}
	return out.Data.PublicKey, nil
}

// maxKeyFile bounds a key file: an RSA-4096 PKCS#8 key in PEM is ~3.3 KiB.
const maxKeyFile = 64 << 10

// readKeyFile reads the key material of file ("-": standard input); a
// PEM "PRIVATE KEY" block is decoded to its DER.
func (e *env) readKeyFile(file string) ([]byte, error) {
	var r io.Reader
	if file == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, &hintError{err: err, hint: "FILE is the key to import: raw bytes, or a PKCS#8 private key"}
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFile {
		clear(b)
		return nil, &hintError{err: fmt.Errorf("%s is larger than any key (%d KiB)", file, maxKeyFile>>10), hint: "FILE is the key to import: raw bytes, or a PKCS#8 private key"}
	}
	if len(b) == 0 {
		return nil, &hintError{err: fmt.Errorf("%s is empty", file), hint: "FILE is the key to import: raw bytes, or a PKCS#8 private key"}
	}
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		block, _ := pem.Decode(bytes.TrimSpace(b))
		clear(b)
		if block == nil || block.Type != "PRIVATE KEY" {
			return nil, &hintError{err: fmt.Errorf("%s is PEM but not a \"PRIVATE KEY\" block", file), hint: "convert it to PKCS#8: openssl pkcs8 -topk8 -nocrypt -in KEY -outform DER -out key.der"}
		}
		return block.Bytes, nil
	}
	return b, nil
}
