package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The unsafe minimum pending window is honoured only by dev servers and
// servers started with -unsafe-test-settings; any other server refuses
// to start while it is set, with an error and a hint.
func TestUnsafeMinPendingWindowOnlyForTestServers(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == unsafeMinPendingWindowEnv {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		v            string
		dev, allowed bool
		want         time.Duration
		wantErr      string
	}{
		{"", false, false, 0, ""},
		{"1s", true, false, time.Second, ""},
		{"1s", false, true, time.Second, ""},
		{"1s", false, false, 0, "not a dev server"},
		{"soon", true, false, 0, "not a positive duration"},
		{"-1s", false, true, 0, "not a positive duration"},
	} {
		d, msg, hint := unsafeMinPendingWindow(env(tc.v), tc.dev, tc.allowed)
		if d != tc.want || (tc.wantErr == "") != (msg == "") || !strings.Contains(msg, tc.wantErr) || (msg != "" && hint == "") {
			t.Errorf("%q dev=%v allowed=%v: %v %q %q", tc.v, tc.dev, tc.allowed, d, msg, hint)
		}
	}

	// A config (production) server with the variable set does not start.
	t.Setenv(unsafeMinPendingWindowEnv, "1s")
	var out, errOut strings.Builder
	code := runServer(context.Background(), []string{"-config", t.TempDir() + "/keyraft.hcl"}, &out, &errOut, func(string) string { return "" })
	if code != 2 || !strings.HasPrefix(errOut.String(), "error: "+unsafeMinPendingWindowEnv) || !strings.Contains(errOut.String(), "\nhint: ") {
		t.Fatalf("server -config with %s set: exit %d, stderr %q", unsafeMinPendingWindowEnv, code, errOut.String())
	}
}
