package conformance

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// T is what a check needs from whoever runs it: *testing.T under go test
// (through TestStorage and TestCrypto), or the plain runner of RunBinary
// that prints PASS/FAIL lines. Fatal and Fatalf end the check at once,
// as in package testing: call them from the check's own goroutine only.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Error(args ...any)
	Fatalf(format string, args ...any)
	Fatal(args ...any)
	Skip(args ...any)
	Cleanup(func())
	// TempDir returns a new directory, removed when the check ends.
	TempDir() string
	// Run runs fn as a named sub-check and reports whether it passed.
	Run(name string, fn func(T)) bool
}

// testingT adapts *testing.T: only Run differs in its signature.
type testingT struct{ *testing.T }

func (t testingT) Run(name string, fn func(T)) bool {
	return t.T.Run(name, func(t *testing.T) { fn(testingT{t}) })
}

// report is the shared state of one RunBinary: where lines go, and how
// many checks failed.
type report struct {
	mu     sync.Mutex
	out    io.Writer
	failed int
	passed int
}

func (r *report) line(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, format+"\n", args...)
}

// runner is a T outside of go test. Each check runs on a goroutine of its
// own so that Fatal can end it with runtime.Goexit, as testing does.
type runner struct {
	rep  *report
	name string

	mu       sync.Mutex
	failed   bool // this check's own failures
	subFail  bool // a sub-check failed
	skipped  bool
	msgs     []string
	cleanups []func()
}

var _ T = (*runner)(nil)

func (r *runner) Helper() {}

func (r *runner) log(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
}

func (r *runner) fail(msg string) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	r.log(msg)
}

func (r *runner) Errorf(format string, args ...any) { r.fail(fmt.Sprintf(format, args...)) }
func (r *runner) Error(args ...any)                 { r.fail(strings.TrimSuffix(fmt.Sprintln(args...), "\n")) }
func (r *runner) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *runner) Fatal(args ...any)                 { r.Error(args...); runtime.Goexit() }

func (r *runner) Skip(args ...any) {
	r.mu.Lock()
	r.skipped = true
	r.mu.Unlock()
	r.log(strings.TrimSuffix(fmt.Sprintln(args...), "\n"))
	runtime.Goexit()
}

func (r *runner) Cleanup(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, fn)
}

func (r *runner) TempDir() string {
	dir, err := os.MkdirTemp("", "keyraft-conformance-")
	if err != nil {
		r.Fatalf("TempDir: %v", err)
	}
	r.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Run runs fn on a new goroutine and waits for it, its cleanups (last
// registered first) included; then it prints the check's line.
func (r *runner) Run(name string, fn func(T)) bool {
	sub := &runner{rep: r.rep, name: name}
	if r.name != "" {
		sub.name = r.name + "/" + name
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sub.runCleanups()
		defer func() {
			if p := recover(); p != nil {
				sub.fail(fmt.Sprintf("panic: %v\n%s", p, debug.Stack()))
			}
		}()
		fn(sub)
	}()
	<-done
	ok := sub.finish(time.Since(start))
	if !ok {
		r.mu.Lock()
		r.subFail = true
		r.mu.Unlock()
	}
	return ok
}

func (r *runner) runCleanups() {
	for {
		r.mu.Lock()
		n := len(r.cleanups)
		if n == 0 {
			r.mu.Unlock()
			return
		}
		fn := r.cleanups[n-1]
		r.cleanups = r.cleanups[:n-1]
		r.mu.Unlock()
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.fail(fmt.Sprintf("panic in cleanup: %v", p))
				}
			}()
			fn()
		}()
	}
}

// finish prints the check's result and counts its own failure.
func (r *runner) finish(d time.Duration) bool {
	r.mu.Lock()
	failed, subFail, skipped, msgs := r.failed, r.subFail, r.skipped, r.msgs
	r.mu.Unlock()
	status := "PASS"
	switch {
	case failed || subFail:
		status = "FAIL"
	case skipped:
		status = "SKIP"
	}
	r.rep.line("%-4s  %s (%.2fs)", status, r.name, d.Seconds())
	for _, m := range msgs {
		for _, l := range strings.Split(m, "\n") {
			r.rep.line("      %s", l)
		}
	}
	r.rep.mu.Lock()
	switch {
	case failed:
		r.rep.failed++
	case !subFail && !skipped:
		r.rep.passed++
	}
	r.rep.mu.Unlock()
	return !failed && !subFail
}
