package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildSetsVersion builds keyraft as a release would, with the
// version set by -ldflags, and checks that the CLI and the server's API
// both report it.
func TestBuildSetsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	const v = "9.8.7-test"
	bin := filepath.Join(t.TempDir(), "keyraft")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X github.com/keyraft/keyraft/internal/version.Version="+v, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "keyraft "+v+" ") {
		t.Fatalf("keyraft version: %q %v", out, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "server", "-dev", "-dev-root-token-id=root", "-dev-listen-address=127.0.0.1:0")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	defer srv.Process.Signal(os.Interrupt)
	addr := ""
	sc := bufio.NewScanner(stdout)
	for addr == "" && sc.Scan() {
		if m := bannerAddrLine.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	go io.Copy(io.Discard, stdout)
	if addr == "" {
		t.Fatal("no address in the dev server's banner")
	}
	status := exec.Command(bin, "status", "-format=json")
	status.Env = []string{"KEYRAFT_ADDR=" + addr}
	out, err = status.Output()
	var s struct{ Version string }
	if err != nil || json.Unmarshal(out, &s) != nil || s.Version != v {
		t.Fatalf("status -format=json of the server: %q %v; want version %s", out, err, v)
	}
}
