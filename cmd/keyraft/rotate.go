package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keyraft/keyraft/api"
)

// rotationProgress is the data of GET sys/rotate/progress.
type rotationProgress struct {
	Term       uint32 `json:"term"`
	Total      int    `json:"total"`
	Done       int    `json:"done"`
	Running    bool   `json:"running"`
	Error      string `json:"error,omitempty"`
	StartedAt  string `json:"started_at,omitempty"`
	FinishedAt string `json:"finished_at,omitempty"`
}

func readRotationProgress(e *env, c *api.Client) (*rotationProgress, error) {
	var out struct {
		Data rotationProgress `json:"data"`
	}
	if err := c.Do(e.ctx, "GET", "sys/rotate/progress", nil, &out); err != nil {
		return nil, err
	}
	return &out.Data, nil
}

// describe says in a few words where the re-encryption stands.
func (p *rotationProgress) describe() string {
	switch {
	case p.Running && p.Error != "":
		return fmt.Sprintf("retrying at %d/%d values after an error: %s", p.Done, p.Total, p.Error)
	case p.Error != "":
		return fmt.Sprintf("finished at %d/%d values with errors: %s", p.Done, p.Total, p.Error)
	case p.Running && p.Total == 0:
		return "scanning for older values"
	case p.Running:
		return fmt.Sprintf("running, %d/%d values", p.Done, p.Total)
	case p.StartedAt == "":
		return "nothing to do (never rotated)"
	}
	return fmt.Sprintf("done, %d/%d values", p.Done, p.Total)
}

var operatorRotateCmd = &command{
	name:    "operator rotate",
	summary: "rotate the barrier keyring that encrypts stored data",
	network: true,
	help: `
Add a new term to the barrier keyring, the keys that encrypt everything the
cluster stores (Vault's 'operator rotate'; needs a root token). Every node
encrypts new values with the new term as soon as it applies the change;
older terms stay in the keyring, so nothing becomes unreadable.

The leader then re-encrypts every stored value of an older term in the
background. With -wait the command follows that until it is done and
prints a line each time it moves on; 'keyraft operator key-status' shows
it at any time, on any node.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		wait := fs.Bool("wait", false, "follow the re-encryption of older values until it is done")
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				Term uint32 `json:"term"`
			} `json:"data"`
		}
		if err := c.Do(e.ctx, "PUT", "sys/rotate", nil, &out); err != nil {
			return &hintError{err: err, hint: "rotating needs a root token and an unsealed server"}
		}
		term := out.Data.Term
		if g.format == "table" {
			fmt.Fprintf(e.stdout, "Success! Rotated the barrier keyring: new values use term %d.\n", term)
		}
		if !*wait {
			if g.format == "json" {
				return printJSON(e.stdout, out.Data)
			}
			fmt.Fprintln(e.stdout, "Older values are re-encrypted in the background: see 'keyraft operator key-status'.")
			return nil
		}
		p, err := e.followRotation(g, c, term)
		if err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, map[string]any{"term": term, "progress": p})
		}
		if p.Error != "" {
			return errors.New("re-encryption " + p.describe())
		}
		return nil
	},
}

// followRotation polls the re-encryption of term (or of a newer rotation)
// until it is no longer running, printing each step in table format.
func (e *env) followRotation(g *globals, c *api.Client, term uint32) (*rotationProgress, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		p, err := readRotationProgress(e, c)
		if err != nil {
			return nil, err
		}
		if line := p.describe(); line != last && g.format == "table" {
			fmt.Fprintf(e.stdout, "Re-encryption (term %d): %s\n", p.Term, clean(line))
			last = line
		}
		if !p.Running && p.Term >= term {
			return p, nil
		}
		select {
		case <-e.ctx.Done():
			return nil, e.ctx.Err()
		case <-tick.C:
		}
	}
}

var operatorKeyStatusCmd = &command{
	name:    "operator key-status",
	summary: "show the barrier keyring's term and re-encryption progress",
	network: true,
	help: `
Show the barrier keyring's active term and when it was installed, as the
server uses it (Vault's 'operator key-status'), and how far the
re-encryption of older values after the latest rotation has got. Needs a
root token.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				Term        uint32 `json:"term"`
				InstallTime string `json:"install_time"`
			} `json:"data"`
		}
		if err := c.Do(e.ctx, "GET", "sys/key-status", nil, &out); err != nil {
			return err
		}
		p, err := readRotationProgress(e, c)
		if err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, map[string]any{"term": out.Data.Term, "install_time": out.Data.InstallTime, "progress": p})
		}
		printTable(e.stdout, []row{
			{"Key Term", strconv.FormatUint(uint64(out.Data.Term), 10)},
			{"Install Time", out.Data.InstallTime},
			{"Re-encryption", p.describe()},
		})
		return nil
	},
}
