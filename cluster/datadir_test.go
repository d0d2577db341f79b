package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSecondNodeOnDataDirFailsAtOnce: a second node on a data directory
// in use fails with ErrDataDirInUse, saying who holds it, without
// waiting for bbolt's lock (5 s); once the first has shut down, the
// directory opens again.
func TestSecondNodeOnDataDirFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	first := startNode(t, dir)
	start := time.Now()
	second, err := New(testConfig(t, dir))
	took := time.Since(start)
	if err == nil {
		second.Shutdown()
		t.Fatal("a second node opened a data directory in use")
	}
	want := fmt.Sprintf("%s is held by another node in this process (pid %d)", dir, os.Getpid())
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), want) {
		t.Errorf("second New: %v\nwant ErrDataDirInUse with %q", err, want)
	}
	// The lock is taken without waiting; bbolt's open would have waited
	// for its 5 s timeout first.
	if took >= 5*time.Second {
		t.Errorf("the refusal took %v", took)
	}
	if err := first.Shutdown(); err != nil {
		t.Fatal(err)
	}
	again, err := New(testConfig(t, dir))
	if err != nil {
		t.Fatalf("reopening after Shutdown: %v", err)
	}
	again.Shutdown()
}

// TestDataDirHeldByAnotherProcess: the lock of another process is
// reported with its pid, and the kernel frees it when that process exits.
func TestDataDirHeldByAnotherProcess(t *testing.T) {
	if dir := os.Getenv("KEYRAFT_TEST_HOLD_DATA_DIR"); dir != "" {
		// The child: hold the lock until stdin closes.
		if _, err := lockDataDir(dir); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDataDirHeldByAnotherProcess$")
	cmd.Env = append(os.Environ(), "KEYRAFT_TEST_HOLD_DATA_DIR="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("the child said %q, %v", line, err)
	}
	_, err = New(testConfig(t, dir))
	want := fmt.Sprintf("is held by another keyraft process (pid %d); stop it, or give this node another data directory", cmd.Process.Pid)
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("New while another process holds the directory: %v\nwant %q", err, want)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the child: %v", err)
	}
	n, err := New(testConfig(t, dir))
	if err != nil {
		t.Fatalf("New after the holder exited: %v", err)
	}
	n.Shutdown()
}
