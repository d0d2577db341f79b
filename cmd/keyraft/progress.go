package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress shows how far a long transfer has got (a snapshot saved or
// restored, an audit export) on one line of stderr that it rewrites in
// place, at most ten times a second. It exists only when stderr is a
// terminal: a pipe, a file or a test's buffer never gets it.
type progress struct {
	w     io.Writer
	label string
	total int64 // bytes in all; 0 when unknown
	now   func() time.Time

	mu   sync.Mutex
	n    int64
	last time.Time
}

// progress returns the progress line for label, or nil (which does
// nothing) when stderr is not a terminal.
func (e *env) progress(label string, total int64) *progress {
	f, ok := e.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || e.getenv("TERM") == "dumb" {
		return nil
	}
	return &progress{w: e.stderr, label: label, total: total, now: time.Now}
}

// reader returns r, counting what is read through it.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.add(int64(n))
	return n, err
}

func (p *progress) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	if now := p.now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.drawLocked()
	}
}

func (p *progress) drawLocked() {
	line := fmt.Sprintf("\r%s: %s", p.label, byteSize(p.n))
	if p.total > 0 {
		line += fmt.Sprintf(" of %s (%d%%)", byteSize(p.total), min(p.n*100/p.total, 100))
	}
	fmt.Fprint(p.w, line+"\x1b[K")
}

// done erases the line, for what the command prints next.
func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\x1b[K")
}

// byteSize is n in B, KiB, MiB or GiB, one decimal.
func byteSize(n int64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/(1<<10), "KiB"
	for _, u := range []string{"MiB", "GiB"} {
		if v < 1<<10 {
			break
		}
		v, unit = v/(1<<10), u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
