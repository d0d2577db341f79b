package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrDataDirInUse: another node, in another process or in this one,
// holds the data directory.
var ErrDataDirInUse = errors.New("cluster: data directory in use")

// lockFileName is the file in the data directory whose lock a node holds
// while it has the directory open; it holds the holder's pid.
const lockFileName = "keyraft.lock"

// lockDataDir takes the data directory for this node at once, or fails
// at once when another node holds it: an flock on DIR/keyraft.lock, which
// the kernel releases when the holder exits, however it exits. The file
// names the holder's pid for the next one to report. Closing the returned
// file releases the lock.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cluster: opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by %s; stop it, or give this node another data directory (storage \"raft\" path)",
				ErrDataDirInUse, dir, lockHolder(path))
		}
		return nil, fmt.Errorf("cluster: locking %s: %w", path, err)
	}
	// Best effort: the pid only makes the next one's message better.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// lockHolder describes the process that holds the lock file at path, by
// the pid it wrote when that process is still alive.
func lockHolder(path string) string {
	b, _ := os.ReadFile(path)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	switch {
	case err != nil || pid <= 0:
		return "another keyraft process"
	case pid == os.Getpid():
		return fmt.Sprintf("another node in this process (pid %d)", pid)
	case syscall.Kill(pid, 0) == syscall.ESRCH:
		// The pid of a holder that exited; the one holding now has not
		// written its own yet.
		return "another keyraft process"
	}
	return fmt.Sprintf("another keyraft process (pid %d)", pid)
}
