package host

import (
	"testing"
	"time"
)

func TestBackoffDoublesToTheCap(t *testing.T) {
	c := &Client{cfg: Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000}
	for i, w := range want {
		if got := c.backoff(i); got != w*time.Millisecond {
			t.Fatalf("backoff(%d) = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	if got := c.backoff(1000); got != 10*time.Second {
		t.Fatalf("backoff(1000) = %v", got)
	}
}

func TestLineLoggerSplitsLines(t *testing.T) {
	var lines []string
	w := &lineLogger{log: recorder(&lines), stream: "stdout"}
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\r\n\nthree"))
	if len(lines) != 2 || lines[0] != "one" || lines[1] != "two" {
		t.Fatalf("lines = %q", lines)
	}
}
