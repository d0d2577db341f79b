package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/keyraft/keyraft/api"
)

// Plaintext backups of single keys, in keyraft's format or in the one
// HashiCorp Vault's and OpenBao's transit/restore take, and their
// restore (which takes keyraft's and Vault's). A backup is the key's
// material: the file is readable by its owner only.

// maxBackupFile bounds the backup file restore reads: the server takes at
// most 64 MiB of backup, which is this much base64.
const maxBackupFile = 64 << 20 * 4 / 3

var keysBackupCmd = &command{
	name:    "keys backup",
	args:    "NAME FILE",
	summary: "back a key up to a file, for keyraft, Vault or OpenBao",
	network: true,
	help: `
Write a plaintext backup of the key NAME, every version included, to FILE
('-' is stdout): base64 text that 'keyraft keys restore' takes. The key
must be exportable and allow plaintext backup. FILE is written whole or
not at all, and readable by its owner only: it holds the key.

-for=vault or -for=openbao writes the backup that HashiCorp Vault's or
OpenBao's transit/restore takes (the API's format parameter), to move the
key there with its ciphertexts, signatures and HMACs still valid:

    keyraft keys backup -for=openbao app app.backup
    bao write transit/restore/app backup=@app.backup

Keys Vault cannot represent are refused with the reason (see
docs/byok.md).`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		target := fs.String("for", "keyraft", "make the backup for `SYSTEM`: keyraft, vault (HashiCorp Vault) or openbao")
		pos, err := e.positional(cmd, fs, args, 2, 2)
		if err != nil {
			return err
		}
		format := *target
		switch format {
		case "keyraft":
			format = ""
		case "vault", "openbao":
		default:
			return &usageError{cmd: cmd, msg: fmt.Sprintf("invalid -for %q: use keyraft, vault or openbao", *target)}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		backup, err := c.BackupKey(e.ctx, pos[0], format)
		if err != nil {
			var re *api.ResponseError
			if errors.As(err, &re) && re.StatusCode == 400 && strings.Contains(err.Error(), "allow_plaintext_backup") {
				return &hintError{err: err, hint: fmt.Sprintf("allow it first, for good: keyraft keys config -exportable -allow-plaintext-backup %s", pos[0])}
			}
			return err
		}
		switch {
		case g.format == "json":
			return printJSON(e.stdout, map[string]string{"backup": backup})
		case pos[1] == "-":
			_, err := fmt.Fprintln(e.stdout, backup)
			return err
		}
		if _, err := writeFileAtomically(pos[1], strings.NewReader(backup), nil); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "Saved a backup of key %s for %s to %s.\n", clean(pos[0]), clean(*target), clean(pos[1]))
		return nil
	},
}

var keysRestoreCmd = &command{
	name:    "keys restore",
	args:    "FILE [NAME]",
	summary: "restore a key from a backup (keyraft's, Vault's or OpenBao's)",
	network: true,
	help: `
Restore the key in the backup in FILE ('-' is stdin): one made by 'keyraft
keys backup', or by Vault or OpenBao ('vault read -field=backup
transit/backup/NAME'). The key takes NAME, or the name inside the backup.
An existing key is replaced only with -force, and only if it allows
deletion.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		force := fs.Bool("force", false, "replace a key of that name (it must allow deletion)")
		pos, err := e.positional(cmd, fs, args, 1, 2)
		if err != nil {
			return err
		}
		data, err := e.readInput(pos[0], maxBackupFile)
		if err != nil {
			return &hintError{err: err, hint: "FILE is a backup from 'keyraft keys backup' or Vault's transit/backup"}
		}
		defer clear(data)
		c, err := e.client(g)
		if err != nil {
			return err
		}
		name := ""
		if len(pos) == 2 {
			name = pos[1]
		}
		if err := c.RestoreKey(e.ctx, name, strings.TrimSpace(string(data)), *force); err != nil {
			var re *api.ResponseError
			if errors.As(err, &re) && re.StatusCode == 400 && strings.Contains(err.Error(), "already exists") {
				return &hintError{err: err, hint: "restore it under another name (keyraft keys restore FILE NAME), or replace it with -force"}
			}
			return err
		}
		if name == "" {
			return e.success(g, nil, "Restored the key in %s.", pos[0])
		}
		return e.success(g, nil, "Restored key %s.", name)
	},
}
