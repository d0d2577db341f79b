package main

import (
	"fmt"
	"strings"

	"github.com/keyraft/keyraft/cluster"
)

var operatorRekeyCmd = &command{
	name:    "operator rekey",
	args:    "[KEY]",
	summary: "replace the root key and issue new unseal (or recovery) key shares",
	network: true,
	help: `
Replace the root key and issue new shares, in three steps (a root token is
needed):

  keyraft operator rekey -init -key-shares=5 -key-threshold=3   # prints a nonce
  keyraft operator rekey -nonce=NONCE [KEY]                     # once per current share
  keyraft operator rekey -cancel

Each current holder gives their share (unseal shares, or recovery shares
with an HSM seal) with the nonce; when the threshold is reached, the new
shares are printed once. The stored data is not re-encrypted: the barrier
keyring is rewrapped under the new root key. Without KEY the share is read
from stdin (from a terminal, without echo).`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		init := fs.Bool("init", false, "start a rekey")
		cancel := fs.Bool("cancel", false, "cancel the rekey in progress")
		shares := fs.Int("key-shares", 5, "with -init: number of new `shares`")
		threshold := fs.Int("key-threshold", 3, "with -init: number of new shares needed (`count`)")
		nonce := fs.String("nonce", "", "the `nonce` -init printed")
		pos, err := e.positional(cmd, fs, args, 0, 1)
		if err != nil {
			return err
		}
		switch {
		case *init && *cancel, (*init || *cancel) && *nonce != "":
			return &usageError{cmd: cmd, msg: "-init, -cancel and -nonce go one at a time"}
		case !*init && !*cancel && *nonce == "":
			return &usageError{cmd: cmd, msg: "missing -init, -cancel or -nonce", hint: "start with 'keyraft operator rekey -init'"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		var out map[string]any
		switch {
		case *cancel:
			if err := c.Do(e.ctx, "DELETE", "sys/rekey/init", nil, nil); err != nil {
				return err
			}
			return e.success(g, nil, "Rekey cancelled.")
		case *init:
			if err := c.Do(e.ctx, "PUT", "sys/rekey/init", map[string]any{"secret_shares": *shares, "secret_threshold": *threshold}, &out); err != nil {
				return err
			}
			if g.format == "json" {
				return printJSON(e.stdout, out)
			}
			fmt.Fprintf(e.stdout, "Nonce: %v\nNew shares: %v, threshold %v\nCurrent shares needed: %v\n\nEach holder now runs: keyraft operator rekey -nonce=%v\n",
				out["nonce"], out["n"], out["t"], out["required"], out["nonce"])
			return nil
		}
		key := ""
		if len(pos) == 1 {
			key = strings.TrimSpace(pos[0])
		} else if key, err = e.readSecret("Current key share (will be hidden): "); err != nil {
			return err
		}
		if key == "" {
			return &usageError{cmd: cmd, msg: "no key share given", hint: "pass it on stdin or as an argument"}
		}
		if err := c.Do(e.ctx, "PUT", "sys/rekey/update", map[string]any{"nonce": *nonce, "key": key}, &out); err != nil {
			return &hintError{err: err, hint: "check the nonce with the operator who ran 'keyraft operator rekey -init'"}
		}
		if g.format == "json" {
			return printJSON(e.stdout, out)
		}
		if out["complete"] != true {
			fmt.Fprintf(e.stdout, "Progress: %v of %v current shares.\n", out["progress"], out["required"])
			return nil
		}
		kind := "Unseal"
		if out["recovery_keys"] == true {
			kind = "Recovery"
		}
		keys, _ := out["keys_base64"].([]any)
		for i, k := range keys {
			fmt.Fprintf(e.stdout, "%s Key %d: %s\n", kind, i+1, clean(fmt.Sprint(k)))
		}
		fmt.Fprintf(e.stdout, "\nThe root key was replaced. Give each new share to a different person now:\nthey are shown only once, and the old shares no longer work.\n")
		return nil
	},
}

var operatorGenerateRootCmd = &command{
	name:    "operator generate-root",
	args:    "[KEY]",
	summary: "make a new root token from the unseal (or recovery) key shares",
	network: true,
	help: `
Make a new root token when none is at hand (no token is needed):

  keyraft operator generate-root -init                   # prints a nonce and a one-time pad
  keyraft operator generate-root -nonce=NONCE [KEY]      # once per current share
  keyraft operator generate-root -decode=ENCODED -otp=OTP

The token is released only when the threshold of current shares (unseal
shares, or recovery shares with an HSM seal) is given, and only XORed with
the pad the starter holds. Use it for break-glass, then revoke it.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		init := fs.Bool("init", false, "start a generation")
		cancel := fs.Bool("cancel", false, "cancel the generation in progress")
		nonce := fs.String("nonce", "", "the `nonce` -init printed")
		decode := fs.String("decode", "", "decode this `encoded` token (with -otp)")
		otp := fs.String("otp", "", "the one-time `pad` -init printed")
		pos, err := e.positional(cmd, fs, args, 0, 1)
		if err != nil {
			return err
		}
		if *decode != "" {
			token, err := cluster.DecodeRootToken(*decode, *otp)
			if err != nil {
				return &hintError{err: err, hint: "pass the encoded token the last share printed and the -otp that -init printed"}
			}
			if g.format == "json" {
				return printJSON(e.stdout, map[string]string{"token": token})
			}
			fmt.Fprintln(e.stdout, token)
			return nil
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		var out map[string]any
		switch {
		case *cancel:
			return c.Do(e.ctx, "DELETE", "sys/generate-root/attempt", nil, nil)
		case *init:
			if err := c.Do(e.ctx, "PUT", "sys/generate-root/attempt", map[string]any{}, &out); err != nil {
				return err
			}
			if g.format == "json" {
				return printJSON(e.stdout, out)
			}
			fmt.Fprintf(e.stdout, "Nonce: %v\nOTP: %v\nShares needed: %v\n\nKeep the OTP: it decodes the token at the end.\n", out["nonce"], out["otp"], out["required"])
			return nil
		case *nonce == "":
			return &usageError{cmd: cmd, msg: "missing -init, -nonce, -decode or -cancel", hint: "start with 'keyraft operator generate-root -init'"}
		}
		key := ""
		if len(pos) == 1 {
			key = strings.TrimSpace(pos[0])
		} else if key, err = e.readSecret("Current key share (will be hidden): "); err != nil {
			return err
		}
		if err := c.Do(e.ctx, "PUT", "sys/generate-root/update", map[string]any{"nonce": *nonce, "key": key}, &out); err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, out)
		}
		if out["complete"] != true {
			fmt.Fprintf(e.stdout, "Progress: %v of %v shares.\n", out["progress"], out["required"])
			return nil
		}
		fmt.Fprintf(e.stdout, "Encoded Token: %v\nDecode it with: keyraft operator generate-root -decode=%v -otp=OTP\n", out["encoded_token"], out["encoded_token"])
		return nil
	},
}
