package host

import (
	"bytes"
	"sync"

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
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if line := bytes.TrimRight(w.buf[:i], "\r"); len(line) > 0 {
			w.log.Info(string(line), "stream", w.stream)
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 {
		w.log.Info(string(w.buf), "stream", w.stream)
		w.buf = w.buf[:0]
	}
	return len(p), nil
}
