package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/keyraft/keyraft/api"
	"github.com/keyraft/keyraft/cluster/snapfile"
	"github.com/keyraft/keyraft/fsm"
)

var serverCmd = &command{
	name:    "server",
	summary: "run a keyraft node (keyraft server -h for its flags)",
	run: func(e *env, cmd *command, args []string) error {
		return exitCode(runServer(e.ctx, args, e.stdout, e.stderr, e.getenv))
	},
}

var statusCmd = &command{
	name:    "status",
	summary: "show whether the server is initialized and sealed",
	network: true,
	help: `
Show the seal status of the server: its seal type, whether it is
initialized and sealed, and how many unseal key shares it needs.
It needs no token.

Exit codes, as for Vault: 0 unsealed, 2 sealed, 1 error.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		s, err := c.SealStatus(e.ctx)
		if err != nil {
			return err
		}
		if err := e.printStatus(g, s); err != nil {
			return err
		}
		if s.Sealed {
			return exitCode(exitUsage)
		}
		return nil
	},
}

func (e *env) printStatus(g *globals, s *api.SealStatus) error {
	if g.format == "json" {
		return printJSON(e.stdout, s)
	}
	rows := []row{
		{"Seal Type", s.Type},
		{"Initialized", strconv.FormatBool(s.Initialized)},
		{"Sealed", strconv.FormatBool(s.Sealed)},
		{"Total Shares", strconv.Itoa(s.N)},
		{"Threshold", strconv.Itoa(s.T)},
	}
	if s.Sealed {
		nonce := s.Nonce
		if nonce == "" {
			nonce = "n/a"
		}
		rows = append(rows, row{"Unseal Progress", fmt.Sprintf("%d/%d", s.Progress, s.T)}, row{"Unseal Nonce", nonce})
	}
	for _, r := range []row{{"Version", s.Version}, {"Storage Type", s.StorageType}, {"Cluster Name", s.ClusterName}, {"Cluster ID", s.ClusterID}} {
		if r.value != "" {
			rows = append(rows, r)
		}
	}
	printTable(e.stdout, rows)
	return nil
}

var operatorInitCmd = &command{
	name:    "operator init",
	summary: "initialize a new server and print its unseal keys",
	network: true,
	help: `
Initialize a new server: create its root key, split the key that protects
it into -key-shares unseal key shares of which -key-threshold unseal the
server, and print the shares and the initial root token.

They are printed once and never stored by the server. Give each share to a
different person and keep them offline.

A server with an HSM seal (seal "pkcs11") unseals itself: it is split into
-recovery-shares recovery key shares instead (-recovery-threshold of them
authorize recovery operations), and the unseal flags are ignored.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		shares := fs.Int("key-shares", 5, "number of unseal key `shares` to create")
		threshold := fs.Int("key-threshold", 3, "number of shares needed to unseal (`count`)")
		recShares := fs.Int("recovery-shares", 0, "with an HSM seal: number of recovery key `shares` (default 5)")
		recThreshold := fs.Int("recovery-threshold", 0, "with an HSM seal: number of recovery shares needed (`count`, default 3)")
		if _, err := e.positional(cmd, fs, args, 0, 0); err != nil {
			return err
		}
		if *recShares != 0 || *recThreshold != 0 {
			c, err := e.client(g)
			if err != nil {
				return err
			}
			r, err := c.Init(e.ctx, api.InitRequest{RecoveryShares: *recShares, RecoveryThreshold: *recThreshold})
			if err != nil {
				return &hintError{err: err, hint: "-recovery-shares is for a server with an HSM seal; a Shamir server takes -key-shares"}
			}
			if g.format == "json" {
				return printJSON(e.stdout, r)
			}
			for i, k := range r.RecoveryKeysBase64 {
				fmt.Fprintf(e.stdout, "Recovery Key %d: %s\n", i+1, clean(k))
			}
			fmt.Fprintf(e.stdout, "\nInitial Root Token: %s\n\n", clean(r.RootToken))
			fmt.Fprint(e.stdout, `The server is initialized and unsealed itself with its HSM seal. Store the
recovery keys now, each with a different person and offline: they are shown
only once.
`)
			return nil
		}
		switch {
		case *shares < 1:
			return &usageError{cmd: cmd, msg: "-key-shares must be at least 1"}
		case *threshold < 1:
			return &usageError{cmd: cmd, msg: "-key-threshold must be at least 1"}
		case *threshold > *shares:
			return &usageError{cmd: cmd, msg: fmt.Sprintf("-key-threshold (%d) is larger than -key-shares (%d)", *threshold, *shares)}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		r, err := c.Init(e.ctx, api.InitRequest{SecretShares: *shares, SecretThreshold: *threshold})
		if err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, r)
		}
		keys := r.KeysBase64
		if len(keys) == 0 {
			keys = r.Keys
		}
		for i, k := range keys {
			fmt.Fprintf(e.stdout, "Unseal Key %d: %s\n", i+1, clean(k))
		}
		fmt.Fprintf(e.stdout, "\nInitial Root Token: %s\n\n", clean(r.RootToken))
		fmt.Fprintf(e.stdout, "The server is initialized with %d key shares and a threshold of %d.\n", len(keys), *threshold)
		fmt.Fprint(e.stdout, `Store the unseal keys now, each with a different person and offline: they
are shown only once, and the server cannot start serving without them.
Keep the root token as safe.
`)
		return nil
	},
}

var operatorUnsealCmd = &command{
	name:    "operator unseal",
	args:    "[KEY]",
	summary: "give the server one unseal key share",
	network: true,
	help: `
Give the server one unseal key share, in hex or base64, and print its seal
status. Run it once per share until the threshold is reached. Without KEY
the share is read from stdin; from a terminal, without echo. A key given as
an argument lands in the shell's history: prefer stdin.

-reset discards the shares given so far.

-migrate gives a share for a seal migration: on a node restarted with the
new seal block and the old one marked disabled = true, the old unseal
shares (Shamir to HSM) or the recovery shares (HSM to Shamir) move the
cluster's root key to the new seal. Restart the other nodes with the same
config afterwards.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		reset := fs.Bool("reset", false, "discard the shares given so far")
		migrate := fs.Bool("migrate", false, "the share is for a seal migration")
		pos, err := e.positional(cmd, fs, args, 0, 1)
		if err != nil {
			return err
		}
		if *reset && len(pos) > 0 {
			return &usageError{cmd: cmd, msg: "-reset takes no KEY"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		var s *api.SealStatus
		if *reset {
			s, err = c.UnsealReset(e.ctx)
		} else {
			key := ""
			if len(pos) == 1 {
				key = strings.TrimSpace(pos[0])
			} else if key, err = e.readSecret("Unseal Key (will be hidden): "); err != nil {
				return err
			}
			if key == "" {
				return &usageError{cmd: cmd, msg: "no unseal key given",
					hint: "pass it on stdin or as an argument: keyraft operator unseal [KEY]"}
			}
			if *migrate {
				s, err = c.UnsealMigrate(e.ctx, key)
			} else {
				s, err = c.Unseal(e.ctx, key)
			}
		}
		if err != nil {
			return err
		}
		return e.printStatus(g, s)
	},
}

// readSecret reads one secret line: from a terminal without echo, after
// prompting on stderr; otherwise the whole of stdin (at most 64 KiB).
func (e *env) readSecret(prompt string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return e.readTerminal(int(f.Fd()), prompt)
	}
	if e.stdin == nil {
		return "", nil
	}
	data, err := io.ReadAll(io.LimitReader(e.stdin, 64<<10+1))
	if err != nil {
		return "", fmt.Errorf("reading stdin: %w", err)
	}
	if len(data) > 64<<10 {
		return "", errors.New("stdin is larger than 64 KiB: that is not an unseal key")
	}
	return strings.TrimSpace(string(data)), nil
}

// readTerminal reads a line from the terminal fd without echo. An
// interrupt (the context ends) restores the terminal and gives up.
func (e *env) readTerminal(fd int, prompt string) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	fmt.Fprint(e.stderr, prompt)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		fmt.Fprintln(e.stderr)
		if r.err != nil {
			return "", fmt.Errorf("reading the terminal: %w", r.err)
		}
		return strings.TrimSpace(string(r.b)), nil
	case <-e.ctx.Done():
		term.Restore(fd, state)
		fmt.Fprintln(e.stderr)
		return "", e.ctx.Err()
	}
}

var operatorSealCmd = &command{
	name:    "operator seal",
	summary: "seal the server",
	network: true,
	help: `
Seal the server: it forgets its root key and serves only status and unseal
until it is unsealed again with the threshold of unseal key shares. Needs a
token allowed to seal.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		if err := c.Seal(e.ctx); err != nil {
			return err
		}
		if g.format == "table" {
			fmt.Fprintln(e.stdout, "Success! The server is sealed.")
		}
		return nil
	},
}

var operatorRaftListPeersCmd = &command{
	name:    "operator raft list-peers",
	summary: "list the servers of the Raft cluster",
	network: true,
	help: `
List the servers of the Raft configuration: node ID, cluster address,
state (leader, follower) and whether it votes.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				Config struct {
					Servers []struct {
						NodeID  string `json:"node_id"`
						Address string `json:"address"`
						Leader  bool   `json:"leader"`
						Voter   bool   `json:"voter"`
					} `json:"servers"`
				} `json:"config"`
			} `json:"data"`
		}
		if err := c.Do(e.ctx, "GET", "sys/storage/raft/configuration", nil, &out); err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, out.Data)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 8, 4, ' ', 0)
		fmt.Fprint(tw, "Node\tAddress\tState\tVoter\n----\t-------\t-----\t-----\n")
		for _, s := range out.Data.Config.Servers {
			state := "follower"
			if s.Leader {
				state = "leader"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", clean(s.NodeID), clean(s.Address), state, s.Voter)
		}
		return tw.Flush()
	},
}

var operatorRaftSnapshotSaveCmd = &command{
	name:    "operator raft snapshot save",
	args:    "FILE",
	summary: "save a snapshot of the whole cluster state to a file",
	network: true,
	help: `
Save a snapshot of the cluster's state to FILE: keys, policies, tokens and
the audit log, all as barrier ciphertext (the file is no more secret than
the data directory, and no less). The file is written completely or not
at all. Needs a root token.

The file is a Vault-compatible raft snapshot archive (gzip of a tar:
meta.json, state.bin, SHA256SUMS and SHA256SUMS.sealed, the checksums
sealed by the cluster's keyring), so 'bao operator raft snapshot' and
the Vault API client save and restore the same files. Its contents are
checked while it streams; an older server's raw snapshot is checked and
saved as it comes.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		rest, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		body, err := c.Stream(e.ctx, "sys/storage/raft/snapshot")
		if err != nil {
			return err
		}
		defer body.Close()
		prog := e.progress("Saving the snapshot", 0)
		// Check the snapshot while it streams: a transfer cut short must
		// not become a file that looks like a backup.
		pr, pw := io.Pipe()
		valid := make(chan error, 1)
		go func() {
			err := checkSnapshot(pr)
			io.Copy(io.Discard, pr)
			valid <- err
		}()
		n, err := writeFileAtomically(rest[0], io.TeeReader(prog.reader(body), pw), func() error {
			pw.Close()
			if err := <-valid; err != nil {
				return fmt.Errorf("the snapshot received is incomplete or damaged: %v", err)
			}
			return nil
		})
		prog.done()
		if err != nil {
			pw.CloseWithError(err)
			return err
		}
		fmt.Fprintf(e.stderr, "Saved a snapshot of %d bytes to %s.\n", n, rest[0])
		return nil
	},
}

// checkSnapshot reads a whole snapshot as it streams and says whether it
// is complete and sound: an archive (its state, its SHA256SUMS, a
// SHA256SUMS.sealed, which only the cluster can open, and its end), or
// the raw stream an older server sends.
func checkSnapshot(r io.Reader) error {
	br := bufio.NewReader(r)
	head, _ := br.Peek(2)
	if !snapfile.IsArchive(head) {
		_, err := fsm.ValidateSnapshot(br)
		return err
	}
	a, err := snapfile.Read(br, math.MaxInt64, func(state io.Reader) error {
		_, err := fsm.ValidateSnapshot(state)
		return err
	})
	if err == nil && len(a.Sealed) == 0 {
		err = errors.New("the archive has no " + snapfile.SealedName)
	}
	return err
}

var operatorRaftSnapshotRestoreCmd = &command{
	name:    "operator raft snapshot restore",
	args:    "FILE",
	summary: "replace the cluster state with a saved snapshot",
	network: true,
	help: `
Replace the whole cluster state with the snapshot in FILE. The node seals
itself afterwards: unseal it with the shares of the cluster the snapshot
came from. A snapshot of another cluster (a different root of trust) is
refused unless -force. Needs a root token.

FILE is an archive saved by 'keyraft operator raft snapshot save' (or by
'bao operator raft snapshot save' from keyraft), whose sealed checksums
must open with this cluster's keyring unless -force; or the raw snapshot
an older keyraft version saved, checked by cluster ID only.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		force := fs.Bool("force", false, "restore a snapshot taken on another cluster")
		rest, err := e.positional(cmd, fs, args, 1, 1)
		if err != nil {
			return err
		}
		f, err := os.Open(rest[0])
		if err != nil {
			return &hintError{err: err, hint: "make one with 'keyraft operator raft snapshot save FILE'"}
		}
		defer f.Close()
		c, err := e.client(g)
		if err != nil {
			return err
		}
		path := "sys/storage/raft/snapshot"
		if *force {
			path += "-force"
		}
		var size int64
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		prog := e.progress("Restoring the snapshot", size)
		err = c.Upload(e.ctx, path, prog.reader(f))
		prog.done()
		if err != nil {
			var re *api.ResponseError
			if errors.As(err, &re) && re.StatusCode == 400 && strings.Contains(err.Error(), "another cluster") {
				return &hintError{err: err, hint: "pass -force to replace this cluster's keys with the snapshot's"}
			}
			return err
		}
		return e.success(g, nil, "Restored the snapshot. The node is sealed: unseal it with the snapshot's unseal keys.")
	},
}
