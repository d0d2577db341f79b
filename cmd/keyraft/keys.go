package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyraft/keyraft/api"
)

var keysCreateCmd = &command{
	name:    "keys create",
	args:    "NAME",
	summary: "create a key",
	network: true,
	help: `
Create the key NAME. Its type and options cannot be changed later, except
-exportable and -allow-plaintext-backup, which 'keys config' can turn on.

Types: aes128-gcm96, aes256-gcm96 (default), chacha20-poly1305,
xchacha20-poly1305 and rsa-2048, rsa-3072, rsa-4096 encrypt; ed25519,
ecdsa-p256, ecdsa-p384, ecdsa-p521 and the rsa types sign; hmac makes MACs.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		var o api.KeyOptions
		fs.StringVar(&o.Type, "type", "", "key `type` (default aes256-gcm96)")
		fs.BoolVar(&o.Derived, "derived", false, "derive a key per context: every use must give -context")
		fs.BoolVar(&o.ConvergentEncryption, "convergent", false, "same plaintext and context give the same ciphertext (needs -derived)")
		fs.BoolVar(&o.Exportable, "exportable", false, "allow the key to be exported")
		fs.BoolVar(&o.AllowPlaintextBackup, "allow-plaintext-backup", false, "allow a plaintext backup of the key")
		period := durationFlag{}
		fs.Var(&period, "auto-rotate-period", "rotate every `DURATION` (24h, 30d, or seconds); 0 = never")
		fs.IntVar(&o.KeySize, "key-size", 0, "key size in `bytes`, for hmac keys")
		fs.StringVar(&o.Backend, "backend", "", "crypto `backend` that holds the key: soft, pkcs11, a registered plugin, or builtin (default: the server's)")
		activation := timeFlag{}
		fs.Var(&activation, "activation-time", "the key stays pre-active (unusable) until `TIME` (RFC 3339, e.g. 2030-01-02T15:04:05Z)")
		share := fs.Float64("auto-rotate-share", 0, "rotate when the newest version made this `share` of 2^32 encryptions (0 = default 0.5)")
		pos, err := e.positional(cmd, fs, args, 1, 1)
		if err != nil {
			return err
		}
		o.AutoRotatePeriod = period.d
		path, err := keyPath(pos[0], "")
		if err != nil {
			return err
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		data, warnings, err := e.call(c, "POST", path, createKeyBody(o, activation, *share))
		if err != nil {
			return err
		}
		if g.format == "table" && keyExisted(warnings) {
			// The server kept the key as it was (its warning says so,
			// above): nothing was created.
			fmt.Fprintf(e.stdout, "Key %s exists, unchanged.\n", clean(pos[0]))
			return nil
		}
		return e.success(g, data, "Created key %s.", pos[0])
	},
}

var keysListCmd = &command{
	name:    "keys list",
	summary: "list the keys",
	network: true,
	help:    "List the names of the keys, one a line.",
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		keys, err := c.ListKeys(e.ctx)
		if err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, map[string][]string{"keys": keys})
		}
		if len(keys) == 0 {
			fmt.Fprintln(e.stderr, "No keys.")
			return nil
		}
		fmt.Fprint(e.stdout, "Keys\n----\n")
		for _, k := range keys {
			fmt.Fprintln(e.stdout, clean(k))
		}
		return nil
	},
}

var keysReadCmd = &command{
	name:    "keys read",
	args:    "NAME",
	summary: "show a key's settings and versions",
	network: true,
	help: `
Show the settings of the key NAME and its versions (with the public key of
asymmetric types). Never shows key material.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		raw, err := e.readKeyRaw(c, pos[0])
		if err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, raw)
		}
		var k api.Key
		var lc keyLifecycle
		if err := json.Unmarshal(raw, &k); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &lc); err != nil {
			return err
		}
		printTable(e.stdout, append(keyRows(&k), lc.rows()...))
		lc.printHistory(e.stdout)
		return nil
	},
}

// keyExisted reports whether the warnings of a key creation say that the
// key was there already, its settings unchanged (transit's CreateKey
// answers so, as Vault does, rather than failing).
func keyExisted(warnings []string) bool {
	for _, w := range warnings {
		if strings.Contains(w, "already exists") {
			return true
		}
	}
	return false
}

// keyRows lists the fields of k by name, as the API names them.
func keyRows(k *api.Key) []row {
	b := strconv.FormatBool
	rows := []row{
		{"allow_plaintext_backup", b(k.AllowPlaintextBackup)},
		{"auto_rotate_period", (time.Duration(k.AutoRotatePeriod) * time.Second).String()},
		{"convergent_encryption", b(k.ConvergentEncryption)},
		{"deletion_allowed", b(k.DeletionAllowed)},
		{"derived", b(k.Derived)},
		{"exportable", b(k.Exportable)},
		{"imported_key", b(k.ImportedKey)},
		{"latest_version", strconv.Itoa(k.LatestVersion)},
		{"min_available_version", strconv.Itoa(k.MinAvailableVersion)},
		{"min_decryption_version", strconv.Itoa(k.MinDecryptionVersion)},
		{"min_encryption_version", strconv.Itoa(k.MinEncryptionVersion)},
		{"name", k.Name},
		{"supports_decryption", b(k.SupportsDecryption)},
		{"supports_derivation", b(k.SupportsDerivation)},
		{"supports_encryption", b(k.SupportsEncryption)},
		{"supports_signing", b(k.SupportsSigning)},
		{"type", k.Type},
	}
	if k.KDF != "" {
		rows = append(rows, row{"kdf", k.KDF})
		sort.Slice(rows, func(i, j int) bool { return rows[i].key < rows[j].key })
	}
	// One row per version, in version order: "keys/1", "keys/2", …
	versions := make([]string, 0, len(k.Keys))
	for v := range k.Keys {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool {
		a, errA := strconv.Atoi(versions[i])
		b, errB := strconv.Atoi(versions[j])
		if errA != nil || errB != nil {
			return versions[i] < versions[j]
		}
		return a < b
	})
	for _, v := range versions {
		rows = append(rows, row{"keys/" + v, string(k.Keys[v])})
	}
	return rows
}

var keysRotateCmd = &command{
	name:    "keys rotate",
	args:    "NAME",
	summary: "add a new version to a key",
	network: true,
	help: `
Add a new version to the key NAME. New encryptions and signatures use it;
ciphertexts of older versions still decrypt down to min_decryption_version.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		data, err := e.keyAction(c, pos[0], "rotate", nil)
		if err != nil {
			return err
		}
		return e.success(g, data, "Rotated key %s.", pos[0])
	},
}

var keysConfigCmd = &command{
	name:    "keys config",
	args:    "NAME",
	summary: "change a key's settings",
	network: true,
	help: `
Change the settings of the key NAME. Only the flags given are sent; the
other settings stay as they are. -exportable and -allow-plaintext-backup
cannot be turned off once on.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		minDec := fs.Int("min-decryption-version", 0, "oldest `version` whose ciphertexts still decrypt")
		minEnc := fs.Int("min-encryption-version", 0, "oldest `version` usable to encrypt and sign; 0 = the latest")
		deletion := fs.Bool("deletion-allowed", false, "allow 'keys delete' (true or false)")
		exportable := fs.Bool("exportable", false, "allow the key to be exported")
		backup := fs.Bool("allow-plaintext-backup", false, "allow a plaintext backup of the key")
		period := durationFlag{}
		fs.Var(&period, "auto-rotate-period", "rotate every `DURATION` (24h, 30d, or seconds); 0 = never")
		activation := timeFlag{}
		fs.Var(&activation, "activation-time", "move the activation of a pre-active key to `TIME` (RFC 3339)")
		share := fs.Float64("auto-rotate-share", 0, "rotate when the newest version made this `share` of 2^32 encryptions")
		pos, err := e.positional(cmd, fs, args, 1, 1)
		if err != nil {
			return err
		}
		body := map[string]any{}
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "min-decryption-version":
				body["min_decryption_version"] = *minDec
			case "min-encryption-version":
				body["min_encryption_version"] = *minEnc
			case "deletion-allowed":
				body["deletion_allowed"] = *deletion
			case "exportable":
				body["exportable"] = *exportable
			case "allow-plaintext-backup":
				body["allow_plaintext_backup"] = *backup
			case "auto-rotate-period":
				body["auto_rotate_period"] = apiSeconds(period.d)
			case "activation-time":
				body["activation_time"] = activation.String()
			case "auto-rotate-share":
				body["auto_rotate_share"] = *share
			}
		})
		if len(body) == 0 {
			return &usageError{cmd: cmd, msg: "nothing to change",
				hint: "give at least one of -min-decryption-version, -min-encryption-version, -deletion-allowed, -exportable, -allow-plaintext-backup, -auto-rotate-period, -activation-time, -auto-rotate-share"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		data, err := e.keyAction(c, pos[0], "config", body)
		if err != nil {
			return err
		}
		return e.success(g, data, "Updated key %s.", pos[0])
	},
}

var keysDeleteCmd = &command{
	name:    "keys delete",
	args:    "NAME",
	summary: "delete a key and all its versions",
	network: true,
	help: `
Delete the key NAME and every version of it. Ciphertexts made with it can
never be decrypted again. The server refuses unless the key allows it:
'keyraft keys config -deletion-allowed=true NAME' first.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		if err := c.DeleteKey(e.ctx, pos[0]); err != nil {
			var re *api.ResponseError
			if errors.As(err, &re) && re.StatusCode == 400 && strings.Contains(strings.ToLower(err.Error()), "deletion") {
				return &hintError{err: err, hint: fmt.Sprintf("allow it first: keyraft keys config -deletion-allowed=true %s", pos[0])}
			}
			return err
		}
		return e.success(g, nil, "Deleted key %s.", pos[0])
	},
}

// durationFlag reads a duration as Vault does: a Go duration ("24h",
// "90m"), a number of days ("30d") or a number of seconds ("3600").
type durationFlag struct{ d time.Duration }

func (f *durationFlag) String() string { return f.d.String() }

func (f *durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	f.d = d
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	const maxSeconds = int64((1<<63 - 1) / time.Second)
	unit, digits := time.Second, s
	if days, ok := strings.CutSuffix(s, "d"); ok {
		unit, digits = 24*time.Hour, days
	}
	if n, err := strconv.ParseInt(digits, 10, 64); err == nil {
		switch {
		case n < 0:
			return 0, errors.New("the duration must not be negative")
		case n > maxSeconds/int64(unit/time.Second):
			return 0, errors.New("the duration is too long")
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, errors.New("use a duration like 24h, 30d or 3600 (seconds)")
	case d < 0:
		return 0, errors.New("the duration must not be negative")
	}
	return d, nil
}
