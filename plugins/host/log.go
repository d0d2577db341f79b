package host

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"unicode"

	"github.com/hashicorp/go-hclog"
)

// fixedName keeps go-plugin from appending the binary's name (and
// "stdio") to the plugin's logger: every line is tagged with the
// plugin's configured name only.
type fixedName struct{ hclog.Logger }

func (l fixedName) Named(string) hclog.Logger      { return l }
func (l fixedName) ResetNamed(string) hclog.Logger { return l }
func (l fixedName) With(args ...any) hclog.Logger  { return fixedName{l.Logger.With(args...)} }

// lineLogger logs what a plugin writes to os.Stdout / os.Stderr after
// its handshake, a line at a time.
type lineLogger struct {
	log    hclog.Logger
	stream string

	mu  sync.Mutex
	buf []byte
}

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	splitLines(&w.buf, p, 64<<10, func(line []byte) {
		if line = bytes.TrimRight(line, "\r"); len(line) > 0 {
			w.log.Info(string(line), "stream", w.stream)
		}
	})
	return len(p), nil
}

// splitLines adds p to what buf holds and calls emit with each whole line
// (without its newline); a partial line longer than max is emitted as it
// stands, so that buf stays bounded.
func splitLines(buf *[]byte, p []byte, max int, emit func(line []byte)) {
	*buf = append(*buf, p...)
	for {
		i := bytes.IndexByte(*buf, '\n')
		if i < 0 {
			break
		}
		emit((*buf)[:i])
		*buf = (*buf)[i+1:]
	}
	if len(*buf) > max {
		emit(*buf)
		*buf = (*buf)[:0]
	}
}

// stderrTail keeps the last lines a plugin process wrote to stderr, from
// its start on (go-plugin copies them here, besides logging them), so
// that a plugin that exits before its handshake can be told why in the
// error, not only in the node's log.
type stderrTail struct {
	mu    sync.Mutex
	lines []string
	buf   []byte
}

const (
	tailLines   = 16
	tailLineMax = 2 << 10
)

func (t *stderrTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	splitLines(&t.buf, p, tailLineMax, t.add)
	return len(p), nil
}

func (t *stderrTail) add(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	if len(line) > tailLineMax {
		line = line[:tailLineMax]
	}
	t.lines = append(t.lines, string(line))
	if len(t.lines) > tailLines {
		t.lines = t.lines[1:]
	}
}

// cause is why the plugin says it stopped, for an error: its last error
// line (hclog JSON: its message and error fields, never its other
// fields, which may carry anything), else its last line; "" when it
// wrote nothing. Values of the secret settings the plugin was given
// (secrets: PINs, passwords) and what looks like key material are
// replaced by [redacted]; it is cut to a few hundred bytes, on one line.
func (t *stderrTail) cause(secrets []string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	pick := ""
	for i := len(t.lines) - 1; i >= 0; i-- {
		msg, level := logLine(t.lines[i])
		if pick == "" {
			pick = msg
		}
		if level == "error" || strings.HasPrefix(msg, "panic: ") {
			pick = msg
			break
		}
	}
	for _, s := range secrets {
		pick = strings.ReplaceAll(pick, s, "[redacted]")
	}
	pick = keyLike.ReplaceAllStringFunc(pick, func(s string) string {
		if strings.HasPrefix(s, "/") { // a file's path
			return s
		}
		if isHexRun(s) || (strings.ContainsAny(s, "0123456789") && strings.ToLower(s) != s && strings.ToUpper(s) != s) {
			return "[redacted]"
		}
		return s
	})
	pick = strings.Join(strings.FieldsFunc(pick, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(pick) > causeMax {
		pick = strings.ToValidUTF8(pick[:causeMax], "") + "..."
	}
	return pick
}

const causeMax = 400

// keyLike matches runs that could be key material in base64 or hex; cause
// redacts those of mixed case and digits (base64) or all hex.
var keyLike = regexp.MustCompile(`[A-Za-z0-9+/=_-]{32,}`)

func isHexRun(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// logLine reads one stderr line: an hclog JSON line gives its message
// (with its error field) and level; any other line is its own message.
func logLine(line string) (msg, level string) {
	var l map[string]any
	if json.Unmarshal([]byte(line), &l) != nil {
		return line, ""
	}
	msg, _ = l["@message"].(string)
	if e, ok := l["error"].(string); ok && e != "" {
		msg += ": " + e
	}
	level, _ = l["@level"].(string)
	return msg, strings.ToLower(level)
}

// secretValues are the values of the settings in env (KEY=VALUE) whose
// names say they are secret (a PIN, a password, a secret, a key).
func secretValues(env []string) []string {
	var out []string
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.ToUpper(k)
		if !ok || len(v) < 3 {
			continue
		}
		for _, s := range []string{"PIN", "PASSWORD", "PASSPHRASE", "SECRET"} {
			if strings.Contains(k, s) {
				out = append(out, v)
				break
			}
		}
		if strings.HasSuffix(k, "_KEY") {
			out = append(out, v)
		}
	}
	return out
}
