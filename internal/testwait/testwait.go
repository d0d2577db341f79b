// Package testwait is how keyraft's tests wait for a condition: poll it
// with a deadline, and fail the test naming what never happened. The
// deadline only bounds a broken test (it is generous: the suite runs on
// slow, busy machines); it is never a speed check.
package testwait

import (
	"testing"
	"time"
)

// Default is the deadline of For.
const Default = 60 * time.Second

// For polls cond until it holds, failing t after Default.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Default, what, cond)
}

// Within polls cond until it holds, failing t after d. Polls start a
// millisecond apart and back off to 50 ms, so a fast condition costs
// little and a slow one does not spin.
func Within(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// Poll polls cond until it holds (true) or d passes (false), for a test
// that does more than fail when it times out.
func Poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
	return true
}
