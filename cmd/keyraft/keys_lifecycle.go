package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyraft/keyraft/api"
)

// Key lifecycle commands: disable, enable, compromise, destroy and
// cancel-destroy (docs/lifecycle.md has the states and what each allows).

var keysDisableCmd = lifecycleCommand("disable", "refuse every use of a key until it is enabled", `
Disable the key NAME: every use (encrypt, decrypt, sign, verify, hmac) is
refused until 'keyraft keys enable NAME'. Nothing is lost.`, "Disabled key %s.", nil)

var keysEnableCmd = lifecycleCommand("enable", "make a disabled or pre-active key usable", `
Enable the key NAME: a disabled key becomes active again; a pre-active key is
activated now, before its activation time.`, "Enabled key %s.", nil)

var keysCompromiseCmd = lifecycleCommand("compromise", "mark a key compromised (decrypt and verify only)", `
Mark the key NAME compromised, for good: from now on it only decrypts and
verifies, so the data can be moved to a new key, and every answer about it
carries a warning and "key_compromised": true (also in the audit log).`, "Marked key %s compromised.",
	func(fs *flag.FlagSet) func() map[string]any {
		reason := fs.String("reason", "", "why (kept in the key's history)")
		return func() map[string]any { return map[string]any{"reason": *reason} }
	})

var keysDestroyCmd = lifecycleCommand("destroy", "schedule the destruction of a key", `
Schedule the destruction of the key NAME. From now on every use is refused;
when the pending window has passed (default 7 days, 1h to 30 days) the
cluster removes every version's material from its state, snapshots, Raft log
and disk files, and keeps only the key's metadata and history. Until then
'keyraft keys cancel-destroy NAME' undoes it (the key comes back disabled).
The key must allow deletion: 'keyraft keys config -deletion-allowed=true NAME'.`, "Key %s will be destroyed.",
	func(fs *flag.FlagSet) func() map[string]any {
		window := durationFlag{}
		fs.Var(&window, "pending-window", "destroy after `DURATION` (1h to 720h; default 168h)")
		return func() map[string]any {
			if window.d == 0 {
				return nil
			}
			return map[string]any{"pending_window": window.d.String()}
		}
	})

var keysCancelDestroyCmd = lifecycleCommand("cancel-destroy", "cancel a scheduled destruction", `
Cancel the scheduled destruction of the key NAME. The key comes back
disabled (compromised if it was), so enable it before use.`, "Cancelled the destruction of key %s; it is disabled now.", nil)

// lifecycleCommand makes "keys <action> [flags] NAME", which posts the
// body that extra's flags build to transit/keys/NAME/<action>.
func lifecycleCommand(action, summary, help, done string, extra func(fs *flag.FlagSet) func() map[string]any) *command {
	return &command{
		name:    "keys " + action,
		args:    "NAME",
		summary: summary,
		network: true,
		help:    help,
		run: func(e *env, cmd *command, args []string) error {
			fs, g := e.flags(cmd)
			body := func() map[string]any { return nil }
			if extra != nil {
				body = extra(fs)
			}
			pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
			if err != nil {
				return err
			}
			data, err := e.keyAction(c, pos[0], action, body())
			if err != nil {
				return lifecycleHint(err, action, pos[0])
			}
			return e.success(g, data, done, pos[0])
		},
	}
}

// lifecycleHint adds the likely fix to a refused destroy.
func lifecycleHint(err error, action, name string) error {
	msg := strings.ToLower(err.Error())
	switch {
	case action == "destroy" && strings.Contains(msg, "deletion_allowed"):
		return &hintError{err: err, hint: "allow it first: keyraft keys config -deletion-allowed=true " + name}
	case strings.Contains(msg, "not found"):
		return &hintError{err: err, hint: "list the keys with: keyraft keys list"}
	}
	return err
}

// keyPath is the API path of the key name, escaped so that no name (one
// with a slash, a question mark) reaches another endpoint, with the
// action after it when there is one: transit/keys/NAME[/action].
func keyPath(name, action string) (string, error) {
	if name == "" || name == "." || name == ".." {
		return "", fmt.Errorf("invalid key name %q", name)
	}
	p := "transit/keys/" + url.PathEscape(name)
	if action != "" {
		p += "/" + action
	}
	return p, nil
}

// keyAction posts body to transit/keys/NAME/action and returns the data
// of the answer.
func (e *env) keyAction(c *api.Client, name, action string, body map[string]any) (json.RawMessage, error) {
	path, err := keyPath(name, action)
	if err != nil {
		return nil, err
	}
	if body == nil {
		body = map[string]any{}
	}
	data, _, err := e.call(c, "POST", path, body)
	return data, err
}

// apiSeconds is a duration as the transit API takes one: "3600s".
func apiSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// createKeyBody is the body of a key creation: the options given, the
// lifecycle ones included.
func createKeyBody(o api.KeyOptions, activation timeFlag, share float64) map[string]any {
	body := map[string]any{}
	for k, on := range map[string]bool{"derived": o.Derived, "convergent_encryption": o.ConvergentEncryption,
		"exportable": o.Exportable, "allow_plaintext_backup": o.AllowPlaintextBackup} {
		if on {
			body[k] = true
		}
	}
	if o.Type != "" {
		body["type"] = o.Type
	}
	if o.AutoRotatePeriod != 0 {
		body["auto_rotate_period"] = apiSeconds(o.AutoRotatePeriod)
	}
	if o.KeySize != 0 {
		body["key_size"] = o.KeySize
	}
	if o.Backend != "" {
		body["backend"] = o.Backend
	}
	if activation.set {
		body["activation_time"] = activation.String()
	}
	if share != 0 {
		body["auto_rotate_share"] = share
	}
	return body
}

// readKeyRaw returns the data of GET transit/keys/NAME as the server sent it.
func (e *env) readKeyRaw(c *api.Client, name string) (json.RawMessage, error) {
	path, err := keyPath(name, "")
	if err != nil {
		return nil, err
	}
	data, _, err := e.call(c, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("the server sent no key data")
	}
	return data, nil
}

// keyLifecycle is the lifecycle part of a key read.
type keyLifecycle struct {
	State            string            `json:"state"`
	Compromised      bool              `json:"compromised"`
	StateChangedTime string            `json:"state_changed_time"`
	ActivationTime   string            `json:"activation_time"`
	DestroyTime      string            `json:"destroy_time"`
	Encryptions      map[string]uint64 `json:"encryptions"`
	AutoRotateAt     uint64            `json:"auto_rotate_encryptions"`
	History          []struct {
		Time     string `json:"time"`
		Event    string `json:"event"`
		Version  int    `json:"version"`
		Identity string `json:"identity"`
		Detail   string `json:"detail"`
	} `json:"history"`
}

func (lc *keyLifecycle) rows() []row {
	rows := []row{{"state", lc.State}, {"compromised", strconv.FormatBool(lc.Compromised)}}
	for _, r := range []row{{"state_changed_time", lc.StateChangedTime}, {"activation_time", lc.ActivationTime}, {"destroy_time", lc.DestroyTime}} {
		if r.value != "" {
			rows = append(rows, r)
		}
	}
	if lc.AutoRotateAt != 0 {
		rows = append(rows, row{"auto_rotate_encryptions", strconv.FormatUint(lc.AutoRotateAt, 10)})
	}
	versions := make([]int, 0, len(lc.Encryptions))
	for v := range lc.Encryptions {
		if n, err := strconv.Atoi(v); err == nil {
			versions = append(versions, n)
		}
	}
	sort.Ints(versions)
	for _, v := range versions {
		rows = append(rows, row{"encryptions/" + strconv.Itoa(v), strconv.FormatUint(lc.Encryptions[strconv.Itoa(v)], 10)})
	}
	return rows
}

// printHistory prints the lifecycle events, oldest first.
func (lc *keyLifecycle) printHistory(w io.Writer) {
	if len(lc.History) == 0 {
		return
	}
	fmt.Fprint(w, "\nHistory\n-------\n")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, h := range lc.History {
		what := h.Event
		if h.Version != 0 {
			what += " v" + strconv.Itoa(h.Version)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(h.Time), clean(what), clean(h.Identity), clean(h.Detail))
	}
	tw.Flush()
}

// timeFlag reads an RFC 3339 time.
type timeFlag struct {
	t   time.Time
	set bool
}

func (f *timeFlag) String() string {
	if !f.set {
		return ""
	}
	return f.t.UTC().Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("use an RFC 3339 time like 2030-01-02T15:04:05Z")
	}
	f.t, f.set = t, true
	return nil
}
