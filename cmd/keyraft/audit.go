package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/api"
	"github.com/keyraft/keyraft/audit"
)

// auditEventLine prints one event as a readable line (table format).
func auditEventLine(w io.Writer, e *audit.Event) {
	key := ""
	if e.Key != "" {
		key = " key=" + clean(e.Key)
		if e.KeyVersion != 0 {
			key += fmt.Sprintf("@v%d", e.KeyVersion)
		}
	}
	errText := ""
	if e.Error != "" {
		errText = " error=" + strconv.Quote(clean(e.Error))
	}
	id := e.Identity
	if id == "" {
		id = "-"
	}
	fmt.Fprintf(w, "%d %s %s %s %s %d%s identity=%s remote=%s%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339),
		clean(e.Node), clean(e.Operation), e.Outcome, e.Status, key, clean(id), clean(e.RemoteAddr), errText)
}

func printEvents(e *env, g *globals, events []*audit.Event) error {
	for _, ev := range events {
		if g.format == "json" {
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, string(b))
			continue
		}
		auditEventLine(e.stdout, ev)
	}
	return nil
}

type eventsPage struct {
	Events  []*audit.Event `json:"events"`
	NextSeq uint64         `json:"next_seq"`
	Head    struct {
		Seq uint64 `json:"seq"`
	} `json:"head"`
}

var auditTailCmd = &command{
	name:    "audit tail",
	summary: "show the newest audit events, or follow them",
	network: true,
	help: `
Show the last -n events of the cluster's replicated audit log, one per line:
seq, time, node, operation, outcome, status, key, identity. With -f, keep
printing events as they are committed until interrupted. -format=json
prints each event as one JSON line. Needs a root token.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		n := fs.Int("n", 20, "how many of the newest `events` to show first")
		follow := fs.Bool("f", false, "follow: keep printing new events")
		if _, err := e.positional(cmd, fs, args, 0, 0); err != nil {
			return err
		}
		if *n < 0 || *n > 10000 {
			return &usageError{cmd: cmd, msg: "-n must be between 0 and 10000"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		var head eventsPage
		if err := c.Do(e.ctx, "GET", "sys/audit/events?limit=1", nil, &struct{ Data *eventsPage }{&head}); err != nil {
			return err
		}
		from := uint64(1)
		if head.Head.Seq > uint64(*n) {
			from = head.Head.Seq - uint64(*n) + 1
		}
		if !*follow {
			var page eventsPage
			path := fmt.Sprintf("sys/audit/events?from_seq=%d&limit=%d", from, max(*n, 1))
			if err := c.Do(e.ctx, "GET", path, nil, &struct{ Data *eventsPage }{&page}); err != nil {
				return err
			}
			if *n == 0 {
				page.Events = nil
			}
			return printEvents(e, g, page.Events)
		}
		body, err := c.Stream(e.ctx, fmt.Sprintf("sys/audit/stream?from_seq=%d", from))
		if err != nil {
			return err
		}
		defer body.Close()
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 0, 64<<10), audit.MaxEventSize+1)
		for sc.Scan() {
			ev, err := audit.Decode(sc.Bytes())
			if err != nil {
				return fmt.Errorf("the server sent a bad event: %v", err)
			}
			if err := printEvents(e, g, []*audit.Event{ev}); err != nil {
				return err
			}
		}
		if e.ctx.Err() != nil {
			return nil // interrupted: the normal end of -f
		}
		return sc.Err()
	},
}

var auditQueryCmd = &command{
	name:    "audit query",
	summary: "search the audit log",
	network: true,
	help: `
Print the audit events that match every filter given, in seq order.
-since and -until take RFC 3339 times (2026-11-27T10:00:00Z) or a duration
back from now (1h). Needs a root token.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		key := fs.String("key", "", "only events about this `key`")
		identity := fs.String("identity", "", "only events of this token `accessor`")
		operation := fs.String("operation", "", "only this `operation`, e.g. transit/encrypt")
		outcome := fs.String("outcome", "", "allowed, denied or error")
		since := fs.String("since", "", "events at or after this `time`")
		until := fs.String("until", "", "events before this `time`")
		fromSeq := fs.Uint64("from-seq", 1, "start at this `seq`")
		limit := fs.Int("limit", 100, "at most this many `events`")
		if _, err := e.positional(cmd, fs, args, 0, 0); err != nil {
			return err
		}
		q := url.Values{}
		for name, v := range map[string]string{"key": *key, "identity": *identity, "operation": *operation, "outcome": *outcome} {
			if v != "" {
				q.Set(name, v)
			}
		}
		for name, v := range map[string]string{"since": *since, "until": *until} {
			if v == "" {
				continue
			}
			t, err := parseWhen(v)
			if err != nil {
				return &usageError{cmd: cmd, msg: fmt.Sprintf("-%s %q: %v", name, v, err)}
			}
			q.Set(name, t.UTC().Format(time.RFC3339Nano))
		}
		q.Set("from_seq", strconv.FormatUint(max(*fromSeq, 1), 10))
		q.Set("limit", strconv.Itoa(*limit))
		c, err := e.client(g)
		if err != nil {
			return err
		}
		var page eventsPage
		if err := c.Do(e.ctx, "GET", "sys/audit/events?"+q.Encode(), nil, &struct{ Data *eventsPage }{&page}); err != nil {
			return err
		}
		if len(page.Events) == 0 && g.format != "json" {
			fmt.Fprintln(e.stderr, "No matching events.")
		}
		return printEvents(e, g, page.Events)
	},
}

func parseWhen(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("use an RFC 3339 time or a duration such as 1h")
	}
	return t, nil
}

var auditHistoryCmd = &command{
	name:    "audit history",
	args:    "KEY",
	summary: "show every committed change of a key",
	network: true,
	help: `
Show the state changes of KEY (create, rotate, config, trim, delete), each
committed in the same Raft entry as its audit event. Needs a root token.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		rest, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		var page eventsPage
		if err := c.Do(e.ctx, "GET", "sys/audit/history/"+url.PathEscape(rest[0]), nil, &struct{ Data *eventsPage }{&page}); err != nil {
			return err
		}
		if len(page.Events) == 0 && g.format != "json" {
			fmt.Fprintf(e.stderr, "No recorded changes of key %q.\n", clean(rest[0]))
		}
		return printEvents(e, g, page.Events)
	},
}

var auditExportCmd = &command{
	name:    "audit export",
	summary: "write the audit log to a file that can be verified offline",
	network: true,
	help: `
Write the audit log as JSON lines: a header with the cluster's public key
and seq range, one event per line, and the cluster's signed checkpoints
after the events they cover, ending with a fresh one. Check the file later,
without the cluster, with 'keyraft audit verify -file FILE'. The file is
written completely or not at all. Needs a root token.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		out := fs.String("o", "", "output `file` (required; - for stdout)")
		fromSeq := fs.Uint64("from-seq", 1, "first `seq` to export")
		toSeq := fs.Uint64("to-seq", 0, "last `seq` to export (default: up to a fresh checkpoint)")
		if _, err := e.positional(cmd, fs, args, 0, 0); err != nil {
			return err
		}
		if *out == "" {
			return &usageError{cmd: cmd, msg: "missing -o FILE"}
		}
		c, err := e.client(g)
		if err != nil {
			return err
		}
		path := fmt.Sprintf("sys/audit/export?from_seq=%d", max(*fromSeq, 1))
		if *toSeq > 0 {
			path += fmt.Sprintf("&to_seq=%d", *toSeq)
		}
		body, err := c.Stream(e.ctx, path)
		if err != nil {
			return err
		}
		defer body.Close()
		if *out == "-" {
			_, err := io.Copy(e.stdout, body)
			return err
		}
		prog := e.progress("Exporting the audit log", 0)
		n, err := writeFileAtomically(*out, prog.reader(body), nil)
		prog.done()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "Wrote %d bytes to %s.\n", n, *out)
		return nil
	},
}

var auditVerifyCmd = &command{
	name:    "audit verify",
	summary: "check the audit log's hash chain and signed checkpoints",
	network: true,
	help: `
Without -file, export the cluster's whole audit log and check it. With
-file, check an export offline: the hash chain of every event, every
checkpoint's Ed25519 signature, and that nothing was cut off the end.
-pubkey pins the cluster's public key (from 'GET sys/audit/public-key');
without it the key in the file is used, which shows the file is intact
but not who made it.

Exits 0 when everything checks out; otherwise prints the first bad seq and
what is wrong with it (edited, missing, out of order, truncated, bad
checkpoint signature) and exits 1.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		file := fs.String("file", "", "an export `file` to check offline")
		pubB64 := fs.String("pubkey", "", "the cluster's audit public `key` (base64)")
		if _, err := e.positional(cmd, fs, args, 0, 0); err != nil {
			return err
		}
		var pub ed25519.PublicKey
		if *pubB64 != "" {
			k, err := base64.StdEncoding.DecodeString(*pubB64)
			if err != nil || len(k) != ed25519.PublicKeySize {
				return &usageError{cmd: cmd, msg: "-pubkey must be a base64 Ed25519 public key (32 bytes)"}
			}
			pub = k
		}
		var r io.Reader
		if *file != "" {
			f, err := os.Open(*file)
			if err != nil {
				return &hintError{err: err, hint: "make one with 'keyraft audit export -o FILE'"}
			}
			defer f.Close()
			r = f
		} else {
			c, err := e.client(g)
			if err != nil {
				return err
			}
			if pub == nil {
				var pk struct {
					Data struct {
						PublicKey string `json:"public_key"`
					}
				}
				if err := c.Do(e.ctx, "GET", "sys/audit/public-key", nil, &pk); err != nil {
					return err
				}
				if pub, err = base64.StdEncoding.DecodeString(pk.Data.PublicKey); err != nil {
					return fmt.Errorf("the server sent a bad public key")
				}
			}
			body, err := c.Stream(e.ctx, "sys/audit/export")
			if err != nil {
				return err
			}
			defer body.Close()
			b, err := io.ReadAll(body)
			if err != nil {
				return err
			}
			r = bytes.NewReader(b)
		}
		rep, err := audit.VerifyExport(r, pub)
		var p *audit.Problem
		switch {
		case errors.As(err, &p):
			return &hintError{err: fmt.Errorf("audit log tampered: seq %d: %s", p.Seq, p.Reason),
				hint: fmt.Sprintf("%d events before it verified; compare with another copy of the log from seq %d", rep.Events, p.Seq)}
		case err != nil:
			return &hintError{err: err, hint: "the file is not a keyraft audit export, or it is damaged"}
		}
		if g.format == "json" {
			return printJSON(e.stdout, map[string]any{"valid": true, "events": rep.Events, "first_seq": rep.FirstSeq,
				"last_seq": rep.LastSeq, "checkpoints": rep.Checkpoints, "public_key_pinned": rep.PublicKeyPinned})
		}
		fmt.Fprintf(e.stdout, "ok: %d events (seq %d to %d), %d signed checkpoints, chain intact\n",
			rep.Events, rep.FirstSeq, rep.LastSeq, rep.Checkpoints)
		if !rep.PublicKeyPinned {
			fmt.Fprintln(e.stderr, "note: checked with the public key inside the file; pass -pubkey to prove it came from your cluster")
		}
		return nil
	},
}

var auditHashCmd = &command{
	name:    "audit hash",
	args:    "VALUE",
	summary: "compute the audit HMAC of a value, to search the log for it",
	network: true,
	help: `
Print the HMAC-SHA256 of VALUE under the cluster's audit key: the form in
which sensitive request fields (plaintext, ciphertext, context, input, …,
as sent, e.g. base64) appear in audit events. Search for it with
'keyraft audit query -format=json | grep'. Needs a root token.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		rest, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				Hash string `json:"hash"`
			}
		}
		if err := c.Do(e.ctx, "POST", "sys/audit/hash", map[string]string{"input": rest[0]}, &out); err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, out.Data)
		}
		fmt.Fprintln(e.stdout, strings.TrimSpace(out.Data.Hash))
		return nil
	},
}

var auditCompactCmd = &command{
	name:    "audit compact",
	summary: "drop old audit events that were exported, keeping the chain verifiable",
	network: true,
	help: `
Drop the audit events up to and including -up-to-seq from every node's
state. A signed checkpoint must sit exactly at that seq (the default is
the newest one); it stays as the new start of the chain, so the remaining
events still verify. Export the log first: compacted events are gone from
the cluster. Events that some audit device, on any node, has not delivered
yet are kept unless -force. Needs a root token.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		upTo := fs.Uint64("up-to-seq", 0, "last `seq` to drop (default: the newest checkpoint)")
		force := fs.Bool("force", false, "drop events even if audit devices have not delivered them")
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				CompactedTo uint64 `json:"compacted_to"`
			}
		}
		if err := c.Do(e.ctx, "POST", "sys/audit/compact", map[string]any{"up_to_seq": *upTo, "force": *force}, &out); err != nil {
			var re *api.ResponseError
			if errors.As(err, &re) && re.StatusCode == 400 {
				return &hintError{err: err, hint: "compact to a checkpoint's seq; make one with 'keyraft audit export' (which checkpoints the head)"}
			}
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, out.Data)
		}
		fmt.Fprintf(e.stdout, "Success! Dropped audit events up to seq %d.\n", out.Data.CompactedTo)
		return nil
	},
}

var auditSinksCmd = &command{
	name:    "audit sinks",
	summary: "show each audit device's delivery: where, how far, how far behind",
	network: true,
	help: `
List the audit devices (from sys/audit and this node's config) with who
delivers each (a cluster-wide device: the leader; a node-local one: every
node), the last seq delivered, the lag in events and seconds, and the last
error. Lag in seconds is known where the device runs and delivers (ask the
leader for a cluster-wide device). Needs a root token.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		var out struct {
			Data map[string]struct {
				Type       string `json:"type"`
				FromConfig bool   `json:"from_config"`
				Delivery   struct {
					ClusterWide  bool     `json:"cluster_wide"`
					Node         string   `json:"node"`
					Running      bool     `json:"running"`
					Delivering   bool     `json:"delivering"`
					DeliveredSeq uint64   `json:"delivered_seq"`
					LagEvents    uint64   `json:"lag_events"`
					LagSeconds   *float64 `json:"lag_seconds"`
					LastError    string   `json:"last_error"`
				} `json:"delivery"`
			} `json:"data"`
		}
		if err := c.Do(e.ctx, "GET", "sys/audit", nil, &out); err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, out.Data)
		}
		names := make([]string, 0, len(out.Data))
		for n := range out.Data {
			names = append(names, n)
		}
		slices.Sort(names)
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tTYPE\tDELIVERED BY\tDELIVERED SEQ\tLAG EVENTS\tLAG SECONDS\tLAST ERROR")
		for _, n := range names {
			d := out.Data[n]
			by := "every node"
			switch {
			case d.Delivery.ClusterWide && d.Delivery.Delivering:
				by = "leader (this node)"
			case d.Delivery.ClusterWide:
				by = "leader"
			case d.FromConfig:
				by = "this node (config)"
			}
			lag := "-"
			if d.Delivery.LagSeconds != nil {
				lag = strconv.FormatFloat(*d.Delivery.LagSeconds, 'f', 1, 64)
			}
			errText := d.Delivery.LastError
			if errText == "" {
				errText = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", strings.TrimSuffix(clean(n), "/"), clean(d.Type), by,
				d.Delivery.DeliveredSeq, d.Delivery.LagEvents, lag, clean(errText))
		}
		return tw.Flush()
	},
}

var auditReceiveCmd = &command{
	name:    "audit receive",
	summary: "collect audit events from socket devices into a file, exactly once",
	help: `
Run a collector for socket audit devices with framing "acked" (the
default): it appends the events to -o as JSON lines, syncs the file before
it acknowledges them, and tells every connecting node the last seq it
holds, so each event is stored once, in order, whole, across restarts of
the collector, of nodes, and leader changes. -listen is host:port (tcp)
or unix:/path. Runs until interrupted.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, _ := e.flags(cmd)
		listen := fs.String("listen", "127.0.0.1:9090", "`address` to listen on: host:port or unix:/path")
		outPath := fs.String("o", "", "`file` to append the events to (required)")
		maxBytes := fs.Int64("max-bytes", 0, "rotate the file past this many `bytes` (0: never)")
		keep := fs.Int("keep", 5, "rotated `files` to keep")
		if _, err := e.positional(cmd, fs, args, 0, 0); err != nil {
			return err
		}
		if *outPath == "" {
			return &usageError{msg: "missing -o", hint: "keyraft audit receive -listen 127.0.0.1:9090 -o /var/log/keyraft/audit.jsonl"}
		}
		network, addr := "tcp", *listen
		if rest, ok := strings.CutPrefix(addr, "unix:"); ok {
			network, addr = "unix", rest
		}
		path, err := filepath.Abs(*outPath)
		if err != nil {
			return err
		}
		r := &audit.Receiver{Path: path, MaxBytes: *maxBytes, Keep: *keep,
			Logger: hclog.New(&hclog.LoggerOptions{Name: "audit-receive", Output: e.stderr})}
		if err := r.Open(); err != nil {
			return &hintError{err: err, hint: "-o must be a file this user can write, holding only audit events"}
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			r.Close()
			return &hintError{err: err, hint: "pick a free -listen address"}
		}
		p, _ := r.Stored()
		fmt.Fprintf(e.stderr, "listening on %s, appending to %s after seq %d\n", ln.Addr(), path, p.Seq)
		go func() {
			<-e.ctx.Done()
			ln.Close()
		}()
		err = r.Serve(ln)
		r.Close()
		return err
	},
}
