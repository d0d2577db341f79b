// Package openbao runs a throwaway OpenBao dev server (bao server -dev)
// for tests that check keyraft against the real thing: a backup keyraft
// writes for Vault must restore there and work. Tests skip when no bao
// binary is found: $KEYRAFT_BAO, then bao on PATH, then /root/bin/bao.
package openbao

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// RootToken is the root token of every server Start starts.
const RootToken = "root"

// Binary is the bao binary to use, "" when there is none.
func Binary() string {
	if p := os.Getenv("KEYRAFT_BAO"); p != "" {
		return p
	}
	if p, err := exec.LookPath("bao"); err == nil {
		return p
	}
	if _, err := os.Stat("/root/bin/bao"); err == nil {
		return "/root/bin/bao"
	}
	return ""
}

// Server is a running bao dev server (in-memory storage, unsealed, root
// token RootToken) with transit enabled at transit/.
type Server struct {
	Addr   string // http://127.0.0.1:PORT
	Client *vault.Client
	bin    string
	home   string
}

// Start starts a dev server on a free port, killed when the test ends,
// and returns once it answers healthy (within a deadline) with transit
// mounted. It skips t when there is no bao binary.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("no OpenBao binary: set KEYRAFT_BAO, put bao on PATH, or build it to /root/bin/bao")
	}
	home := t.TempDir() // the dev server writes its token helper file there
	var last string
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		s, out, err := start(t, bin, home)
		if err == nil {
			return s
		}
		last = fmt.Sprintf("%v\n%s", err, out)
	}
	t.Fatalf("bao server -dev did not start: %s", last)
	return nil
}

func start(t testing.TB, bin, home string) (*Server, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := l.Addr().String()
	l.Close()
	// The server writes its log straight to a file (no copying
	// goroutine), read when something went wrong.
	out, err := os.CreateTemp(home, "bao-*.log")
	if err != nil {
		return nil, "", err
	}
	defer out.Close()
	log := func() string { b, _ := os.ReadFile(out.Name()); return string(b) }
	cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id="+RootToken, "-dev-listen-address="+addr)
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	cfg := vault.DefaultConfig()
	cfg.Address = "http://" + addr
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		stop()
		return nil, "", err
	}
	c.SetToken(RootToken)

	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if h, err := c.Sys().Health(); err == nil && h.Initialized && !h.Sealed {
			break
		}
		select {
		case <-exited:
			return nil, log(), fmt.Errorf("bao exited before it was healthy")
		case <-deadline.C:
			stop()
			return nil, log(), fmt.Errorf("bao was not healthy within 60s")
		case <-tick.C:
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("bao server output:\n%s", log())
		}
	})
	if err := c.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("enabling transit on OpenBao: %v", err)
	}
	return &Server{Addr: cfg.Address, Client: c, bin: bin, home: home}, "", nil
}

// Bao runs the bao CLI against s (as the root token) with args, and
// returns its output, failing t unless it exits 0.
func (s *Server) Bao(t testing.TB, args ...string) string {
	t.Helper()
	return s.BaoAt(t, s.Addr, args...)
}

// BaoAt runs the bao CLI with args against the server at addr (keyraft
// speaks the same API) with the root token.
func (s *Server) BaoAt(t testing.TB, addr string, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+s.home, "BAO_ADDR="+addr, "VAULT_ADDR="+addr,
		"BAO_TOKEN="+RootToken, "VAULT_TOKEN="+RootToken)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bao %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}
