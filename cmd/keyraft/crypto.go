package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/keyraft/keyraft/api"
)

// maxPlaintext bounds what encrypt and sign read: the server's default
// request limit is 32 MiB, and base64 grows the data by a third.
const maxPlaintext = 24 << 20

var encryptCmd = &command{
	name:    "encrypt",
	args:    "KEY",
	summary: "encrypt data with a key",
	network: true,
	help: `
Encrypt the bytes of stdin (or of the file -in names) with the key KEY and
print the ciphertext, "vault:v<N>:…", and a newline. Empty input is valid.

-context is required for derived keys; -aad is bound to the ciphertext
without being encrypted (AEAD types). Both are taken as raw strings and
must be given again, equal, to decrypt.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		in := fs.String("in", "", "read the plaintext from `FILE` instead of stdin")
		context := fs.String("context", "", "derivation `context` (derived keys)")
		aad := fs.String("aad", "", "associated `data` (AEAD key types)")
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		pt, err := e.readInput(*in, maxPlaintext)
		if err != nil {
			return err
		}
		r, err := c.Encrypt(e.ctx, pos[0], api.EncryptRequest{Plaintext: pt, Context: []byte(*context), AssociatedData: []byte(*aad)})
		if err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, r)
		}
		fmt.Fprintln(e.stdout, clean(r.Ciphertext))
		return nil
	},
}

var decryptCmd = &command{
	name:    "decrypt",
	args:    "KEY",
	summary: "decrypt a ciphertext",
	network: true,
	help: `
Decrypt the ciphertext on stdin (or in the file -in names) with the key KEY
and write the plaintext bytes to stdout, or to the file -out names. Space
around the ciphertext is ignored. -out is written whole or not at all, and
readable by its owner only.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		in := fs.String("in", "", "read the ciphertext from `FILE` instead of stdin")
		out := fs.String("out", "", "write the plaintext to `FILE` instead of stdout")
		context := fs.String("context", "", "derivation `context` (derived keys)")
		aad := fs.String("aad", "", "associated `data` (AEAD key types)")
		pos, err := e.positional(cmd, fs, args, 1, 1)
		if err != nil {
			return err
		}
		if *out != "" && g.format == "json" {
			return &usageError{cmd: cmd, msg: "-out and -format=json do not go together"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		data, err := e.readInput(*in, 2*maxPlaintext)
		if err != nil {
			return err
		}
		ct := strings.TrimSpace(string(data))
		if ct == "" {
			return &hintError{err: errors.New("no ciphertext to decrypt"),
				hint: "pipe in the output of 'keyraft encrypt', or use -in FILE"}
		}
		pt, err := c.Decrypt(e.ctx, pos[0], api.DecryptRequest{Ciphertext: ct, Context: []byte(*context), AssociatedData: []byte(*aad)})
		if err != nil {
			return err
		}
		switch {
		case g.format == "json":
			return printJSON(e.stdout, map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)})
		case *out != "" && *out != "-":
			_, err := writeFileAtomically(*out, bytes.NewReader(pt), nil)
			return err
		}
		_, err = e.stdout.Write(pt)
		return err
	},
}

// sigFlags are the flags sign and verify share.
type sigFlags struct {
	in, hash, sig, marshaling, context *string
	prehashed                          *bool
	signature                          *string // verify only
}

func (e *env) sigFlags(cmd *command, verify bool) (*flag.FlagSet, *globals, *sigFlags) {
	fs, g := e.flags(cmd)
	f := &sigFlags{
		in:         fs.String("in", "", "read the input from `FILE` instead of stdin"),
		hash:       fs.String("hash-algorithm", "", "`hash`: sha2-256 (default), sha2-224, sha2-384, sha2-512, sha3-*, none"),
		sig:        fs.String("signature-algorithm", "", "RSA padding: pss (default) or pkcs1v15 (`name`)"),
		marshaling: fs.String("marshaling-algorithm", "", "ECDSA signature encoding: asn1 (default) or jws (`name`)"),
		context:    fs.String("context", "", "derivation `context` (derived ed25519 keys)"),
		prehashed:  fs.Bool("prehashed", false, "the input is already a digest of -hash-algorithm"),
	}
	if verify {
		f.signature = fs.String("signature", "", "the `signature` to check, vault:v<N>:…")
	}
	return fs, g, f
}

var signCmd = &command{
	name:    "sign",
	args:    "KEY",
	summary: "sign data with a key",
	network: true,
	help: `
Sign the bytes of stdin (or of the file -in names) with the key KEY and
print the signature, "vault:v<N>:…", and a newline.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g, f := e.sigFlags(cmd, false)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		input, err := e.readInput(*f.in, maxPlaintext)
		if err != nil {
			return err
		}
		r, err := c.Sign(e.ctx, pos[0], api.SignRequest{Input: input, Prehashed: *f.prehashed,
			HashAlgorithm: *f.hash, SignatureAlgorithm: *f.sig, MarshalingAlgorithm: *f.marshaling, Context: []byte(*f.context)})
		if err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, r)
		}
		fmt.Fprintln(e.stdout, clean(r.Signature))
		return nil
	},
}

var verifyCmd = &command{
	name:    "verify",
	args:    "KEY",
	summary: "check a signature",
	network: true,
	help: `
Check that -signature is a signature of the bytes of stdin (or of the file
-in names) by the key KEY. Prints "valid" and exits 0, or fails with
"signature is not valid" and exit code 1. The algorithm flags must match
the ones given to sign.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g, f := e.sigFlags(cmd, true)
		pos, err := e.positional(cmd, fs, args, 1, 1)
		if err != nil {
			return err
		}
		if *f.signature == "" {
			return &usageError{cmd: cmd, msg: "missing -signature"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		input, err := e.readInput(*f.in, maxPlaintext)
		if err != nil {
			return err
		}
		valid, err := c.Verify(e.ctx, pos[0], api.VerifyRequest{Input: input, Signature: strings.TrimSpace(*f.signature), Prehashed: *f.prehashed,
			HashAlgorithm: *f.hash, SignatureAlgorithm: *f.sig, MarshalingAlgorithm: *f.marshaling, Context: []byte(*f.context)})
		if err != nil {
			return err
		}
		if g.format == "json" {
			if err := printJSON(e.stdout, map[string]bool{"valid": valid}); err != nil {
				return err
			}
		} else if valid {
			fmt.Fprintln(e.stdout, "valid")
		}
		if !valid {
			return errors.New("signature is not valid")
		}
		return nil
	},
}
