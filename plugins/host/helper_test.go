package host_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/plugins"
	"github.com/keyraft/keyraft/plugins/bolt"
	"github.com/keyraft/keyraft/plugins/host"
	"github.com/keyraft/keyraft/plugins/sdk"
)

// The test binary doubles as misbehaving plugins: started with
// helperEnv=<mode> it serves a bolt store (at helperDBEnv) whose Get and
// Scan misbehave on purpose, instead of running the tests.
const (
	helperEnv   = "KEYRAFT_HOST_TEST_PLUGIN"
	helperDBEnv = "KEYRAFT_HOST_TEST_DB"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		runHelper(mode)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "keyraft-host-test")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runHelper(mode string) {
	switch mode {
	case "garbage":
		fmt.Println("Hello! I am definitely a plugin")
	case "nohandshake":
		time.Sleep(time.Hour)
	case "fakenode":
		runFakeNode()
		return
	case "exit":
		fmt.Fprintln(os.Stderr, "helper: refusing to start")
		os.Exit(7)
	case "exitsecret":
		// A plugin that logs more than it should on its way out.
		sdk.Logger().Info("starting", "key", "c2VjcmV0S2V5TWF0ZXJpYWwwMTIzNDU2Nzg5QUJDREVG")
		sdk.Logger().Error("opening the token with PIN "+os.Getenv("KEYRAFT_HSM_PIN"), "error", "CKR_PIN_INCORRECT for key c2VjcmV0S2V5TWF0ZXJpYWwwMTIzNDU2Nzg5QUJDREVG",
			"plaintext", "TOPSECRETPLAINTEXT")
		sdk.Logger().Info("bye")
		os.Exit(1)
	}
	store, err := bolt.Open(os.Getenv(helperDBEnv))
	if err != nil {
		sdk.Logger().Error("open", "error", err)
		os.Exit(1)
	}
	sdk.ServeStorage(&misbehaving{Store: store, mode: mode})
}

// runFakeNode is a node that starts the bolt plugin, prints its pid and
// waits to be killed.
func runFakeNode() {
	sum, _ := hex.DecodeString(os.Getenv("KEYRAFT_HOST_TEST_SUM"))
	c, err := host.Start(context.Background(), host.Config{
		Name: "bolt", Command: os.Getenv("KEYRAFT_HOST_TEST_BIN"), SHA256: sum,
		Args: []string{"-path", os.Getenv(helperDBEnv)},
	})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(c.Pid())
	time.Sleep(time.Hour)
}

// misbehaving is a bolt store with special keys: "hang" never answers,
// "slow" answers after 3s, "panic" panics; in mode "disorder" scans come
// out in reverse order, in mode "escape" they return a key outside the
// prefix.
type misbehaving struct {
	*bolt.Store
	mode string
}

func (m *misbehaving) Get(key []byte) ([]byte, error) {
	switch string(key) {
	case "hang":
		select {}
	case "slow":
		// Tests wait for this line to know the call is in flight.
		sdk.Logger().Info("slow get started")
		time.Sleep(3 * time.Second)
	case "panic":
		panic("helper plugin: asked to panic")
	case "print":
		fmt.Println("a line on stdout after the handshake")
		fmt.Fprintln(os.Stderr, "a line on stderr after the handshake")
	}
	return m.Store.Get(key)
}

func (m *misbehaving) ScanFrom(prefix, from []byte, fn func(k, v []byte) error) error {
	if string(prefix) == "hang" {
		select {}
	}
	switch m.mode {
	case "disorder":
		var keys []string
		m.Store.ScanFrom(prefix, from, func(k, v []byte) error { keys = append(keys, string(k)); return nil })
		slices.Reverse(keys)
		for _, k := range keys {
			if err := fn([]byte(k), nil); err != nil {
				return err
			}
		}
		return nil
	case "escape":
		if err := fn([]byte(strings.Repeat("z", 3)), nil); err != nil {
			return err
		}
	}
	return m.Store.ScanFrom(prefix, from, fn)
}

func (m *misbehaving) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return m.ScanFrom(prefix, nil, fn)
}

// Write of a batch that puts "slow-write" takes 3s (a store stuck behind
// a long lock).
func (m *misbehaving) Write(batch []plugins.Mutation) error {
	for _, mu := range batch {
		if string(mu.Key) == "slow-write" {
			time.Sleep(3 * time.Second)
		}
	}
	return m.Store.Write(batch)
}

var _ plugins.Storage = (*misbehaving)(nil)
